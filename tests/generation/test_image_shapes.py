"""The shapes the catalogue's image templates offer are shapes the providers
draw: image_request falls back to a square for any other, which the person
would only notice in the picture."""

from __future__ import annotations

from generation.providers.images import ASPECT_RATIOS
from tests.support.catalogue import shipped_templates


def _offered_shapes() -> dict[str, list[str]]:
    shapes = {}
    for template in shipped_templates():
        for field in template.get("fields") or []:
            if field["name"] == "aspect_ratio":
                shapes[template["slug"]] = [str(c["value"]) for c in field["choices"]]
    return shapes


def test_every_image_template_offers_only_shapes_the_providers_draw():
    shapes = _offered_shapes()
    assert shapes, "no image template in the catalogue"
    unknown = {
        slug: [s for s in offered if s not in ASPECT_RATIOS] for slug, offered in shapes.items()
    }
    assert {slug: bad for slug, bad in unknown.items() if bad} == {}


def test_every_image_template_offers_a_choice_of_shapes():
    shapes = _offered_shapes()
    assert {slug: offered for slug, offered in shapes.items() if len(offered) < 2} == {}
