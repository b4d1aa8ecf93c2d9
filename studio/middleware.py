"""Site-wide middleware."""

from __future__ import annotations

from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.deprecation import MiddlewareMixin
from django.utils.translation import gettext as _
from psycopg_pool import PoolTimeout

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
