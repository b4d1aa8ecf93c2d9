"""Image generations on the page and in the API: starting one, its progress, the
gallery, the files (to their owner only), history; bad input refused clearly."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse
from PIL import Image

from generation.images.attempts import image_generation_run
from generation.models import Generation
from generation.services import generation_create
from studio.services import api_token_create
from tests.factories import UserFactory, image_template
from tests.fakes import ScriptedImageProvider

Status = Generation.Status


@pytest.fixture
def template(db):
    return image_template()


@pytest.fixture
def finished(user, template):
    generation = generation_create(
        user=user,
        template=template,
        inputs={"subject": "a mug", "aspect_ratio": "1:1", "count": 2},
        language="en",
    )
    image_generation_run(generation_id=generation.pk, attempt=0, provider=ScriptedImageProvider())
    generation.refresh_from_db()
    return generation


def _bearer(user) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token_create(user=user, name='t')[1]}"}


def test_the_api_starts_an_image_generation(client, user, template):
    response = client.post(
        "/api/v1/generations",
        {
            "template": template.slug,
            "inputs": {"subject": "a mug", "aspect_ratio": "16:9", "count": 3},
        },
        content_type="application/json",
        headers=_bearer(user),
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["kind"], body["status"]) == ("image", "queued")
    generation = Generation.objects.get(pk=body["id"])
    assert generation.inputs["count"] == 3
    assert generation.progress == {"event": "queued", "data": {"position": 1}}


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({"subject": "a mug", "count": 5}, "count"),
        ({"subject": "a mug", "count": 0}, "count"),
        ({"subject": "a mug", "count": "many"}, "count"),
        ({"subject": "a mug", "aspect_ratio": "2:1"}, "aspect_ratio"),
        ({"count": 1}, "subject"),
    ],
)
def test_bad_image_inputs_are_refused_by_field_and_nothing_is_saved(
    client, user, template, inputs, field
):
    response = client.post(
        "/api/v1/generations",
        {"template": template.slug, "inputs": inputs},
        content_type="application/json",
        headers=_bearer(user),
    )

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not Generation.objects.exists()


def test_the_form_refuses_too_many_images_next_to_the_field(user_client, template):
    response = user_client.post(
        reverse("generation:create", args=[template.slug]),
        {"subject": "a mug", "aspect_ratio": "1:1", "count": "9"},
    )

    assert response.status_code == 200
    assert "Enter 4 or less." in response.content.decode()
    assert not Generation.objects.exists()


@pytest.mark.parametrize(
    ("language", "message"), [("en", "Enter a whole number."), ("ja", "整数で入力してください。")]
)
def test_the_form_refuses_a_fraction_of_an_image(
    user_client, template, settings, language, message
):
    user_client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    response = user_client.post(
        reverse("generation:create", args=[template.slug]),
        {"subject": "a mug", "aspect_ratio": "1:1", "count": "2.5"},
    )

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Generation.objects.exists()


def test_a_waiting_image_generation_shows_its_place_and_a_progress_bar(user_client, user, template):
    generation = generation_create(
        user=user, template=template, inputs={"subject": "a mug", "count": 1}, language="en"
    )

    page = user_client.get(generation.get_absolute_url()).content.decode()

    assert "Waiting in line: number 1" in page
    assert '<progress max="100" value="0"' in page
    assert 'sse-swap="queued,progress"' in page
    assert "Generating…" in page


def test_the_finished_page_shows_the_gallery_with_downloads(user_client, finished):
    page = user_client.get(finished.get_absolute_url()).content.decode()

    for index in (0, 1):
        thumbnail = reverse("api:generation_image", args=[finished.pk, index, "thumbnail"])
        assert f'src="{thumbnail}"' in page
        png = reverse("api:generation_image", args=[finished.pk, index, "png"])
        assert f'href="{png}?download=1" download' in page
    assert "2 images" in page


def test_the_owner_gets_each_variant_of_an_image(user_client, finished):
    for variant, content_type, image_format in [
        ("png", "image/png", "PNG"),
        ("webp", "image/webp", "WEBP"),
        ("thumbnail", "image/webp", "WEBP"),
    ]:
        response = user_client.get(reverse("api:generation_image", args=[finished.pk, 0, variant]))
        assert response.status_code == 200
        assert response["Content-Type"] == content_type
        assert Image.open(io.BytesIO(response.content)).format == image_format
        assert "private" in response["Cache-Control"]


def test_download_names_the_file(user_client, finished):
    url = reverse("api:generation_image", args=[finished.pk, 1, "png"])

    response = user_client.get(url, {"download": "1"})

    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert f"{finished.template.slug}-{str(finished.pk)[:8]}-2.png" in disposition


def test_another_person_gets_404_for_the_images(client, finished):
    client.force_login(UserFactory())
    for name, args in [
        ("api:generation_image", [finished.pk, 0, "png"]),
        ("api:generation_detail", [finished.pk]),
    ]:
        assert client.get(reverse(name, args=args)).status_code == 404


def test_nobody_signed_in_gets_401_for_an_image(client, finished):
    response = client.get(reverse("api:generation_image", args=[finished.pk, 0, "png"]))

    assert response.status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "images/7/png",
        "images/0/gif",
        "previews/not-a-claim/preview-0-1.webp",
        "previews/" + "a" * 32 + "/..%2F0.png",
        "previews/" + "a" * 32 + "/preview-0-1.webp",
    ],
)
def test_unknown_images_are_404_not_errors(user_client, finished, path):
    response = user_client.get(f"/api/v1/generations/{finished.pk}/{path}")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")


def test_the_api_lists_the_images(client, user, finished):
    body = client.get(
        reverse("api:generation_detail", args=[finished.pk]), headers=_bearer(user)
    ).json()

    assert body["kind"] == "image"
    assert body["image_count"] == 2
    assert [(image["width"], image["height"]) for image in body["images"]] == [(64, 48), (65, 48)]
    assert body["images"][0]["url"].startswith("http://testserver/api/v1/generations/")
    assert body["images"][0]["thumbnail_url"].endswith("/images/0/thumbnail")


def test_history_shows_a_thumbnail_and_the_image_count(
    user_client, finished, django_assert_max_num_queries
):
    with django_assert_max_num_queries(6):
        page = user_client.get(reverse("generation:history")).content.decode()

    thumbnail = reverse("api:generation_image", args=[finished.pk, 0, "thumbnail"])
    assert f'class="history-thumb" src="{thumbnail}"' in page
    assert "2 images" in page
