"""The JSON API's plumbing: who is asking (an API token or the browser session),
and every refusal as JSON, so that a client never has to read an HTML page."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from studio.services import aapi_token_user, api_token_user
from studio.text import find_unsafe_text

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class ApiError(Exception):
    """Raised inside an API view to answer with an error: a message, or messages by field."""

    def __init__(
        self,
        status: int,
        message: str = "",
        *,
        errors: dict[str, list[str]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.retry_after = retry_after

    def response(self) -> JsonResponse:
        if self.errors is not None:
            response = api_response({"errors": self.errors}, status=self.status)
        else:
            response = api_error(self.status, self.message)
        if self.retry_after is not None:
            response["Retry-After"] = str(self.retry_after)
        return response


def api_response(data: dict[str, Any], status: int = 200) -> JsonResponse:
    return JsonResponse(
        data, status=status, encoder=DjangoJSONEncoder, json_dumps_params={"ensure_ascii": False}
    )


def api_error(status: int, message: str) -> JsonResponse:
    response = api_response({"error": message}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = "Bearer"
    return response


def json_object(request: HttpRequest) -> dict[str, Any]:
    """The request body as a JSON object, or an ApiError saying what is wrong with it."""
    if request.content_type != "application/json":
        raise ApiError(400, _("Send a JSON object with Content-Type: application/json."))
    try:
        raw = request.body
    except RequestDataTooBig:
        raise ApiError(400, _("The request body is too large.")) from None
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(400, _("The request body is not valid JSON.")) from None
    if not isinstance(body, dict):
        raise ApiError(400, _("The request body must be a JSON object."))
    # The text rule at this boundary (studio.text): nothing that cannot be stored.
    problem = find_unsafe_text(body, controls=False)
    match problem and problem[1]:
        case "surrogate":
            raise ApiError(
                400,
                _(
                    "The request body contains text that is not valid Unicode "
                    "(an unpaired surrogate escape such as \\ud800)."
                ),
            )
        case "nul":
            raise ApiError(400, _("The request body contains a NUL character (\\u0000)."))
    return body


def bearer_token(request: HttpRequest) -> str | None:
    """The token of an `Authorization: Bearer …` header ('' if it is malformed);
    None when the request carries no such header."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _sep, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _method_refusal(request: HttpRequest, methods: tuple[str, ...]) -> JsonResponse | None:
    if request.method in methods:
        return None
    response = api_error(
        405,
        _("%(method)s is not allowed here; use %(allowed)s.")
        % {"method": request.method, "allowed": ", ".join(methods)},
    )
    response["Allow"] = ", ".join(methods)
    return response


def _language_refusal(request: HttpRequest) -> JsonResponse | None:
    language = request.GET.get("lang")
    if language is None or language in dict(settings.LANGUAGES):
        return None
    return api_error(
        400,
        _("lang must be one of %(languages)s.")
        % {"languages": ", ".join(code for code, _name in settings.LANGUAGES)},
    )


def _requested_language(request: HttpRequest) -> contextlib.AbstractContextManager:
    """`?lang=` for this request; without it, LocaleMiddleware's choice (Accept-Language)."""
    language = request.GET.get("lang")
    return translation.override(language) if language else contextlib.nullcontext()


def _authentication_refusal(request: HttpRequest, user, *, by_token: bool) -> JsonResponse | None:
    if user is None or not user.is_authenticated:
        if by_token:
            return api_error(401, _("The API token is invalid or has been revoked."))
        return api_error(
            401, _("Authentication required: send Authorization: Bearer <token>, or log in.")
        )
    request.user = user
    # A session rides along on requests that other sites can make a browser send;
    # a token cannot, so only session requests need Django's CSRF check (as in DRF).
    if not by_token and request.method not in SAFE_METHODS:
        rejected = CsrfViewMiddleware(lambda request: None).process_view(request, None, (), {})
        if rejected is not None:
            return api_error(
                403,
                _(
                    "CSRF check failed: send the X-CSRFToken header with the session, "
                    "or use an API token."
                ),
            )
    return None


def _error_response(exc: Exception) -> JsonResponse:
    if isinstance(exc, ApiError):
        return exc.response()
    if isinstance(exc, Http404):
        return api_error(404, _("Not found."))
    return api_error(403, _("You may not do this."))


def api_view(*methods: str) -> Callable[[Callable], Callable]:
    """An API endpoint for `methods`: authenticated by a bearer token or the session,
    CSRF-checked for the session only, in `?lang=` if given, answering errors in JSON."""

    def decorator(view: Callable) -> Callable:
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
                refusal = _method_refusal(request, methods) or _language_refusal(request)
                if refusal:
                    return refusal
                raw = bearer_token(request)
                by_token = raw is not None
                user = await aapi_token_user(raw) if by_token else await request.auser()
                if refusal := _authentication_refusal(request, user, by_token=by_token):
                    return refusal
                try:
                    with _requested_language(request):
                        return await view(request, *args, **kwargs)
                except (ApiError, Http404, PermissionDenied) as exc:
                    return _error_response(exc)

            wrapper = async_wrapper
        else:

            @functools.wraps(view)
            def sync_wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
                refusal = _method_refusal(request, methods) or _language_refusal(request)
                if refusal:
                    return refusal
                raw = bearer_token(request)
                by_token = raw is not None
                user = api_token_user(raw) if by_token else request.user
                if refusal := _authentication_refusal(request, user, by_token=by_token):
                    return refusal
                try:
                    with _requested_language(request):
                        return view(request, *args, **kwargs)
                except (ApiError, Http404, PermissionDenied) as exc:
                    return _error_response(exc)

            wrapper = sync_wrapper
        # Token requests cannot be forged by another site; session requests are
        # checked above instead of by the middleware.
        wrapper.csrf_exempt = True
        return wrapper

    return decorator


@csrf_exempt
def api_not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    """Any other address under the API (a malformed id included)."""
    return api_error(404, _("Not found: there is no such endpoint or object."))
