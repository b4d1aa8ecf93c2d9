"""The offline demo model answers with the template's own sample answer, with
the person's values in it, and says what it is."""

from __future__ import annotations

import pytest
from django.urls import reverse

from generation.models import Generation
from generation.text.runner import runner
from templates_catalog.catalog_io import CatalogError, import_catalog_documents
from templates_catalog.models import Template
from tests.factories import template_with_fields
from tests.fakes import ScriptedProvider

pytestmark = pytest.mark.django_db(transaction=True)

ANSWER_EN = (
    "Subject: Thank you\n\nDear {{ recipient }},\n\nThank you for your time today."
    "{% if note %}\n\nP.S. {{ note }}{% endif %}\n\nKind regards,\n[Your name]"
)
ANSWER_JA = "件名：お礼\n\n{{ recipient }}様\n\n本日はありがとうございました。\n\n［氏名］"


def thanks_template() -> Template:
    return template_with_fields(
        slug="thanks", sample_answer_en=ANSWER_EN, sample_answer_ja=ANSWER_JA
    )


def generate(client, template, **inputs) -> Generation:
    response = client.post(reverse("generation:create", args=[template.slug]), inputs)
    assert response.status_code == 302, response.content[:500]
    generation = Generation.objects.latest("created_at")
    runner.wait(generation.pk, timeout=30)
    generation.refresh_from_db()
    return generation


def test_the_demo_answers_with_the_sample_answer_and_the_persons_own_values(user_client):
    template = thanks_template()
    generation = generate(user_client, template, recipient="Ms Tanaka of Hikari Trading")
    assert generation.status == Generation.Status.COMPLETED
    assert generation.output.startswith("(A sample answer from the offline demo model")
    assert (
        "Dear Ms Tanaka of Hikari Trading,\n\nThank you for your time today." in generation.output
    )
    assert "P.S." not in generation.output  # the optional field was left empty
    other = generate(user_client, template, recipient="Mr Ito", note="See you in May.")
    assert "Dear Mr Ito," in other.output
    assert "P.S. See you in May." in other.output


def test_a_japanese_page_gets_the_japanese_sample_answer(user_client):
    template = thanks_template()
    user_client.cookies["django_language"] = "ja"
    response = user_client.post(
        reverse("generation:create", args=[template.slug]),
        {"recipient": "株式会社ひかり物産 佐藤"},
        headers={"Accept-Language": "ja"},
    )
    assert response.status_code == 302
    generation = Generation.objects.get()
    runner.wait(generation.pk, timeout=30)
    generation.refresh_from_db()
    assert generation.language == "ja"
    assert generation.output.startswith("（オフラインのデモモデルによる見本の回答です。")
    assert "株式会社ひかり物産 佐藤様\n\n本日はありがとうございました。" in generation.output


def test_without_a_sample_answer_in_its_language_the_demo_falls_back_to_an_outline(user_client):
    template = template_with_fields(slug="thanks", sample_answer_ja=ANSWER_JA)
    generation = generate(user_client, template, recipient="Ms Sato")
    assert "## " in generation.output  # the outline, not the Japanese answer
    assert "本日は" not in generation.output


def catalogue(answers: dict) -> dict:
    return {
        "category": {"slug": "mail", "order": 1, "name_ja": "メール", "name_en": "Mail"},
        "templates": [
            {
                "slug": "thanks",
                "title_ja": "お礼",
                "title_en": "Thanks",
                "prompt_ja": "{{ recipient }}へのお礼",
                "prompt_en": "Thanks to {{ recipient }}",
                "fields": [
                    {
                        "name": "recipient",
                        "type": "short_text",
                        "label_ja": "宛先",
                        "label_en": "To",
                    }
                ],
                "sample_answers": answers,
            }
        ],
    }


def test_imported_sample_answers_are_stored_per_language():
    import_catalog_documents(
        [("mail.yaml", catalogue({"ja": ANSWER_JA, "en": "Dear {{ recipient }}"}))]
    )
    template = Template.objects.get(slug="thanks")
    assert template.sample_answer_ja == ANSWER_JA
    assert template.sample_answer_en == "Dear {{ recipient }}"


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"ja": "{{ company }}様"}, "sample_answer_ja: unknown fields company"),
        ({"en": "Dear {{ recipient.__class__ }}"}, "sample_answer_en.*only field names"),
        ({"fr": "Bonjour"}, "sample_answers: unknown keys fr"),
        ({"en": ["not", "text"]}, "sample_answers.en: expected text"),
    ],
)
def test_a_sample_answer_that_names_no_field_or_is_not_text_is_refused(answers, message):
    with pytest.raises(CatalogError, match=message):
        import_catalog_documents([("mail.yaml", catalogue(answers))])
    assert not Template.objects.exists()


def test_a_real_model_is_never_sent_the_sample_answer(user_client, monkeypatch):
    scripted = ScriptedProvider(["Dear Ms Sato, thank you."])
    monkeypatch.setattr(runner, "provider", scripted)
    generation = generate(user_client, thanks_template(), recipient="Ms Sato")
    assert generation.output == "Dear Ms Sato, thank you."
    assert scripted.requests[0].sample_answer == ""
    assert "Dear Ms Sato" not in scripted.requests[0].prompt
