"""Japanese and English: the interface and the catalogue follow the chosen language."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from django.urls import reverse

from tests.factories import TemplateFactory

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def test_japanese_is_the_default_for_japanese_browsers(client):
    TemplateFactory(title_ja="お礼メール", title_en="Thank-you email")
    page = client.get(reverse("catalog:list"), headers={"accept-language": "ja"}).content.decode()
    assert '<html lang="ja">' in page
    assert "テンプレート" in page
    assert "お礼メール" in page
    assert "Thank-you email" not in page


def test_english_browsers_get_english(client):
    TemplateFactory(title_ja="お礼メール", title_en="Thank-you email")
    page = client.get(reverse("catalog:list"), headers={"accept-language": "en"}).content.decode()
    assert '<html lang="en">' in page
    assert "Thank-you email" in page
    assert "お礼メール" not in page


def test_the_switcher_remembers_the_choice(client):
    response = client.post(reverse("set_language"), {"language": "ja", "next": "/templates/"})
    assert response.status_code == 302
    page = client.get("/templates/", headers={"accept-language": "en"}).content.decode()
    assert '<html lang="ja">' in page


def test_a_missing_english_text_falls_back_to_japanese(client):
    TemplateFactory(title_ja="日本語だけ", title_en="", slug="ja-only")
    page = client.get("/t/ja-only/", headers={"accept-language": "en"}).content.decode()
    assert "日本語だけ" in page


def test_every_ui_string_has_a_japanese_translation_and_the_catalogue_is_compiled():
    po = (ROOT / "locale/ja/LC_MESSAGES/django.po").read_text(encoding="utf-8")
    assert "#, fuzzy" not in po
    empty = re.findall(r'^msgid "(.+)"\nmsgstr ""\n\n', po, flags=re.MULTILINE)
    assert empty == []
    with (ROOT / "locale/ja/LC_MESSAGES/django.mo").open("rb") as mo:
        catalog = gettext.GNUTranslations(mo)
    msgids = set(re.findall(r'^msgid "(.+)"$', po, flags=re.MULTILINE))
    same_in_both = {"AI Studio", "URL", "ID"}
    missing = [m for m in msgids - same_in_both if "\\" not in m and catalog.gettext(m) == m]
    assert missing == [], "run `make messages`: the .mo is older than the .po"
