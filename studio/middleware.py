"""Site-wide middleware."""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.decorators import sync_and_async_middleware
from django.utils.deprecation import MiddlewareMixin
from django.utils.translation import gettext as _
from psycopg_pool import PoolTimeout
from whitenoise.middleware import WhiteNoiseMiddleware

from studio.errors import unsafe_text_page
from studio.text import has_unsafe_characters

RETRY_AFTER_SECONDS = 5


class BusyDatabaseMiddleware(MiddlewareMixin):
    """Every database connection stayed busy for the pool's whole timeout: the
    site is overloaded, not broken. Answer 503 with Retry-After (JSON for the
    API) instead of a server error, so that clients back off and retry."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not (
            isinstance(exception, OperationalError) and isinstance(exception.__cause__, PoolTimeout)
        ):
            return None
        if request.path.startswith("/api/"):
            response = JsonResponse(
                {"error": _("The studio is very busy right now. Please try again shortly.")},
                status=503,
            )
        else:
            response = HttpResponse(render_to_string("503.html"), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


class StaticFilesMiddleware:
    """WhiteNoise for the static files, and only for them, under ASGI.

    WhiteNoise's middleware is synchronous. Placed in an ASGI stack as it is,
    every request would hop from the event loop to a thread for it and back to
    the loop for the rest of the stack, and each hop waits its turn on a loop
    that may be carrying a thousand streams. Here only requests under
    STATIC_URL reach WhiteNoise; everything else passes straight through.
    Under WSGI (the test client) it is WhiteNoise as it is.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            self.prefix = "/" + settings.STATIC_URL.lstrip("/")
            self.whitenoise = WhiteNoiseMiddleware(lambda request: None)
            markcoroutinefunction(self)
        else:
            self.whitenoise = WhiteNoiseMiddleware(get_response)

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self._serve_async(request)
        return self.whitenoise(request)

    async def _serve_async(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(self.prefix):
            # Looking a file up and opening it touches the disk: off the loop.
            response = await sync_to_async(self.whitenoise, thread_sensitive=False)(request)
            if response is not None:
                return response
        return await self.get_response(request)


@sync_and_async_middleware
def request_hygiene_middleware(get_response):
    """The text rule (studio.text) for the request line and headers: a NUL or
    another control character in the path, the query or a header value is
    refused with 400 (JSON under /api/, a page elsewhere) before any view or
    query sees it. Bytes that are not UTF-8 have already been decoded to
    U+FFFD by Django."""
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponse:
            return _unsafe_text_refusal(request) or await get_response(request)

    else:

        def middleware(request: HttpRequest) -> HttpResponse:
            return _unsafe_text_refusal(request) or get_response(request)

    return middleware


def _unsafe_text_refusal(request: HttpRequest) -> HttpResponse | None:
    if not _request_has_unsafe_text(request):
        return None
    if request.path_info.startswith("/api/"):
        message = "The address or a header of this request contains a control character."
        return JsonResponse({"error": message}, status=400)
    return unsafe_text_page(request)


def _request_has_unsafe_text(request: HttpRequest) -> bool:
    if has_unsafe_characters(request.path):
        return True
    for key, values in request.GET.lists():
        if has_unsafe_characters(key) or any(map(has_unsafe_characters, values)):
            return True
    return any(
        isinstance(value, str) and has_unsafe_characters(value)
        for name, value in request.META.items()
        if name.startswith("HTTP_")
    )
