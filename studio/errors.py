"""The site's error pages (400, 403, 404, 500 and a refused form) in the page's
language, each with a way back: the home page and the catalogue's search box.

An error page must never fail in turn. The 400, 403 and 404 pages are full
pages (the person's menu included); should that render fail (the database
down, a context processor broken), the page is rendered again without the
request. The 500 page is always rendered without it: no context processor,
no session, no query, since what failed may be what those need; and if even
that fails, a fixed page in both languages is sent.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.csrf import requires_csrf_token

from studio.api import api_error, api_not_found

logger = logging.getLogger(__name__)

# The 500 page when even rendering it fails: no template, no setting, no query.
PLAIN_SERVER_ERROR = (
    '<!doctype html><html lang="ja"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>エラーが発生しました / Something went wrong</title></head><body>"
    "<h1>エラーが発生しました / Something went wrong</h1>"
    "<p>申し訳ありません。サーバーで問題が発生しました。しばらくしてから、もう一度お試しください。</p>"
    "<p>Sorry, something went wrong on our side. Please try again in a moment.</p>"
    '<p><a href="/">トップページへ / Home</a></p></body></html>'
)


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def error_page(
    request: HttpRequest, template_name: str, status: int, context: dict | None = None
) -> HttpResponse:
    """`template_name` as a full page; without the request if that fails."""
    try:
        return render(request, template_name, context, status=status)
    except Exception:
        logger.exception("The %s page failed with the request; rendered without it", status)
        return HttpResponse(render_to_string(template_name, context), status=status)


@requires_csrf_token
def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return api_error(400, _("The request could not be understood."))
    # Not with the request: what was wrong with it may be in a header or the address.
    return HttpResponse(render_to_string("400.html"), status=400)


@requires_csrf_token
def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return api_error(403, _("You may not do this."))
    return error_page(request, "403.html", 403)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent without its security token (an old tab, cookies blocked)."""
    return error_page(request, "403.html", 403, {"form_expired": True})


@requires_csrf_token
def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return api_not_found(request)
    return error_page(request, "404.html", 404)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return api_error(500, _("Something went wrong on our side. Please try again in a moment."))
    try:
        return HttpResponse(render_to_string("500.html"), status=500)
    except Exception:
        logger.exception("The 500 page failed; sent the plain one")
        return HttpResponse(PLAIN_SERVER_ERROR, status=500)


def unsafe_text_page(request: HttpRequest) -> HttpResponse:
    """The 400 page for a request whose address or headers break the text rule
    (studio.text), refused before the language is chosen: in the language the
    person's cookie or browser asks for, and without the request's own text."""
    with translation.override(translation.get_language_from_request(request)):
        return HttpResponse(render_to_string("400.html", {"unsafe_text": True}), status=400)
