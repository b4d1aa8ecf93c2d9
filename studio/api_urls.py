"""The JSON API, version 1 (its contract is in DESIGN.md)."""

from django.urls import path, re_path

from generation.views import api as generation_api
from studio.api import api_not_found
from templates_catalog import api as catalog_api

app_name = "api"
urlpatterns = [
    path("templates", catalog_api.template_list, name="template_list"),
    path("generations", generation_api.generation_create_view, name="generation_create"),
    path("generations/<uuid:pk>", generation_api.generation_detail, name="generation_detail"),
    path(
        "generations/<uuid:pk>/cancel",
        generation_api.generation_cancel_view,
        name="generation_cancel",
    ),
    path(
        "generations/<uuid:pk>/export",
        generation_api.generation_export,
        name="generation_export",
    ),
    path(
        "generations/<uuid:pk>/events",
        generation_api.generation_events,
        name="generation_events",
    ),
    path(
        "generations/<uuid:pk>/images/<int:index>/<str:variant>",
        generation_api.generation_image,
        name="generation_image",
    ),
    path(
        "generations/<uuid:pk>/previews/<str:claim>/<str:name>",
        generation_api.generation_preview,
        name="generation_preview",
    ),
    # Last: anything else (a malformed id too) is a JSON 404, not the HTML page.
    re_path(r"", api_not_found),
]
