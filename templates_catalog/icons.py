"""Each category's icon and colour tone on the pages (the icons are Lucide's,
see studio/templatetags/studio_tags.py). A category staff add later gets the
default until it is named here."""

from __future__ import annotations

from typing import NamedTuple


class Look(NamedTuple):
    icon: str
    tone: int  # 1–8: a colour pair in studio.css (.tone-1 … .tone-8)


DEFAULT = Look("layout-grid", 1)

CATEGORY_LOOKS: dict[str, Look] = {
    "ad-copy": Look("megaphone", 2),
    "sns": Look("message-circle", 6),
    "landing-pages": Look("layout-template", 1),
    "short-video": Look("clapperboard", 3),
    "translation-rewriting": Look("languages", 4),
    "business-email": Look("mail", 1),
    "letters": Look("mail-open", 7),
    "press-releases": Look("newspaper", 5),
    "analysis-research": Look("chart-column", 6),
    "ec-product": Look("shopping-bag", 2),
    "seo-blog": Look("pen-line", 7),
    "sales": Look("handshake", 8),
    "meetings": Look("calendar-clock", 6),
    "hr-recruiting": Look("users", 4),
    "customer-support": Look("headset", 7),
    "education-training": Look("graduation-cap", 5),
    "planning": Look("lightbulb", 8),
    "legal-admin": Look("scale", 3),
    "images": Look("image", 5),
}


def category_look(slug: str) -> Look:
    return CATEGORY_LOOKS.get(slug, DEFAULT)
