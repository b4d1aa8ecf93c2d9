from __future__ import annotations

import dataclasses
import io
import time

import pytest
from PIL import Image, ImageFont

from generation.images.imaging import preview_image, process_image
from generation.providers import demo_images
from generation.providers.base import ProviderError
from generation.providers.demo_images import SIZES, DemoImageProvider, demo_label
from generation.providers.images import (
    ASPECT_RATIOS,
    ImagePreview,
    ImageRequest,
    ImageResult,
    get_image_provider,
)

REQUEST = ImageRequest(
    prompt="A bright flat-lay of seasonal sweets for a café's spring menu",
    aspect_ratio="1:1",
    count=1,
    language="en",
    template_title="Menu visual",
)


@pytest.fixture(autouse=True)
def _draw_at_once(settings):
    settings.STUDIO_DEMO_IMAGE_SECONDS = 0


def _generate(request: ImageRequest) -> tuple[ImageResult, list[ImagePreview]]:
    previews: list[ImagePreview] = []
    result = DemoImageProvider().generate(request, on_preview=previews.append)
    return result, previews


def _with(**changes: object) -> ImageRequest:
    return dataclasses.replace(REQUEST, **changes)


def _size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def test_the_demo_provider_is_the_default_and_names_its_model(settings):
    settings.STUDIO_IMAGE_PROVIDER = "demo"
    provider = get_image_provider()
    assert isinstance(provider, DemoImageProvider)
    assert provider.name == "demo"
    assert str(provider.label) == "Demo model (offline)"
    assert provider.model_for("standard") == provider.model_for("advanced") == "studio-demo-image"


def test_the_same_request_gives_the_same_bytes_and_another_prompt_other_bytes():
    first, _previews = _generate(REQUEST)
    again, _previews = _generate(REQUEST)
    other, _previews = _generate(_with(prompt="A calm seaside hotel lobby at dusk"))
    assert first.images == again.images
    assert first.images[0] != other.images[0]
    assert first.model == "studio-demo-image"
    assert first.filtered == []


def test_the_negative_prompt_changes_the_picture():
    first, _previews = _generate(REQUEST)
    other, _previews = _generate(_with(negative_prompt="people"))
    assert first.images[0] != other.images[0]


@pytest.mark.parametrize("aspect_ratio", ASPECT_RATIOS)
def test_each_aspect_ratio_has_its_own_size(aspect_ratio):
    result, _previews = _generate(_with(aspect_ratio=aspect_ratio))
    width, height = _size(result.images[0])
    assert (width, height) == SIZES[aspect_ratio]
    across, down = (int(part) for part in aspect_ratio.split(":"))
    assert width / height == pytest.approx(across / down, rel=0.02)
    assert Image.open(io.BytesIO(result.images[0])).format == "PNG"


def test_count_images_arrive_each_after_two_previews_in_order():
    result, previews = _generate(_with(count=3))
    assert len(result.images) == 3
    assert len(set(result.images)) == 3
    assert [(preview.index, preview.step) for preview in previews] == [
        (0, 1),
        (0, 2),
        (1, 1),
        (1, 2),
        (2, 1),
        (2, 2),
    ]
    for preview in previews:
        width, height = _size(preview.data)
        assert width == height  # 1:1, like the final image
        assert width < 1024
        assert len(preview.data) < 50_000
    # The second preview of an image is the sharper and larger one.
    assert _size(previews[0].data) < _size(previews[1].data)


def test_demo_images_and_previews_pass_the_image_checks():
    result, previews = _generate(_with(aspect_ratio="16:9"))
    processed = process_image(result.images[0])
    assert (processed.width, processed.height) == (1344, 768)
    for preview in previews:
        assert Image.open(io.BytesIO(preview_image(preview.data))).format == "WEBP"


def test_a_filtered_prompt_withholds_every_second_image_starting_with_the_first():
    result, previews = _generate(_with(prompt="A poster for the [FILTERED] campaign", count=4))
    assert len(result.images) == 2
    assert result.filtered == ["The demo model withholds images whose prompt says [filtered]."] * 2
    assert {preview.index for preview in previews} == {1, 3}


def test_a_filtered_prompt_with_one_image_fails_as_content_filter():
    previews: list[ImagePreview] = []
    with pytest.raises(ProviderError) as failed:
        DemoImageProvider().generate(
            _with(prompt="Something [filtered]"), on_preview=previews.append
        )
    assert failed.value.code == "content_filter"
    assert "[filtered]" in failed.value.message
    assert previews == []


def test_one_image_takes_about_the_configured_time_with_previews_spread_over_it(settings):
    settings.STUDIO_DEMO_IMAGE_SECONDS = 0.6
    arrivals: list[float] = []
    started = time.monotonic()
    DemoImageProvider().generate(
        REQUEST, on_preview=lambda _preview: arrivals.append(time.monotonic() - started)
    )
    elapsed = time.monotonic() - started
    assert 0.6 <= elapsed < 2.0
    assert 0.2 <= arrivals[0] < arrivals[1]
    assert arrivals[1] >= 0.4


def test_the_label_is_english_for_english_requests():
    assert demo_label("en") == "DEMO MODEL — not AI-generated"


def test_japanese_requests_get_the_english_label_when_no_font_can_draw_japanese(monkeypatch):
    try:
        latin_only = ImageFont.truetype("DejaVuSans-Bold.ttf", 24)
    except OSError:
        pytest.skip("DejaVu Sans is not installed")
    monkeypatch.setattr(demo_images, "_font", lambda weight, size, japanese: latin_only)
    assert demo_label("ja") == "DEMO MODEL — not AI-generated"


def test_without_any_system_font_the_label_stays_ascii(monkeypatch):
    # Pillow's own font has no Japanese and no em dash: the label must not
    # turn into boxes.
    monkeypatch.setattr(
        demo_images, "_font", lambda weight, size, japanese: ImageFont.load_default(size=size)
    )
    assert demo_label("ja") == "DEMO MODEL - not AI-generated"
    result, _previews = _generate(_with(language="ja", template_title="メニュー画像"))
    assert _size(result.images[0]) == (1024, 1024)


def test_japanese_requests_are_drawn_deterministically():
    request = _with(language="ja", template_title="新メニューのお知らせ", prompt="春限定の和菓子")
    first, _previews = _generate(request)
    again, _previews = _generate(request)
    assert first.images == again.images


@pytest.mark.parametrize("changes", [{"aspect_ratio": "2:1"}, {"count": 0}, {"count": 5}], ids=str)
def test_requests_the_demo_cannot_draw_are_refused(changes):
    with pytest.raises(ProviderError) as failed:
        _generate(_with(**changes))
    assert failed.value.code == "bad_request"
