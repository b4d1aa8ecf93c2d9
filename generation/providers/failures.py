"""What the real providers tell the person when the model service fails.

Shared so that the same trouble reads the same whichever service is behind it.
Messages are translated when the error is raised: the runner raises them under
the language of the person who started the generation.
"""

from __future__ import annotations

import contextlib
import email.utils
import importlib
import time
from collections.abc import Mapping

from django.utils.translation import gettext as _

from generation.providers.base import ProviderError

_DETAIL_LIMIT = 300


def _transport_errors() -> tuple[tuple[type[BaseException], ...], ...]:
    """(timeouts, failures to connect, any transport failure) of the HTTP clients the
    SDKs may use: httpx2 by default, httpx, or aiohttp (google-genai streams through
    aiohttp whenever it is installed)."""
    timeouts: list[type[BaseException]] = [TimeoutError]
    connects: list[type[BaseException]] = []
    transports: list[type[BaseException]] = []
    for name in ("httpx2", "httpx"):
        with contextlib.suppress(ImportError):
            module = importlib.import_module(name)
            timeouts.append(module.TimeoutException)
            connects.append(module.ConnectError)
            transports.append(module.TransportError)
    with contextlib.suppress(ImportError):
        aiohttp = importlib.import_module("aiohttp")
        timeouts.append(aiohttp.ServerTimeoutError)
        connects.append(aiohttp.ClientConnectorError)
        transports.append(aiohttp.ClientError)
    return tuple(timeouts), tuple(connects), tuple(transports)


# What reading a response can raise below the SDKs, sorted by what the person is told.
TIMEOUT_ERRORS, CONNECT_ERRORS, TRANSPORT_ERRORS = _transport_errors()


def trimmed(detail: object) -> str:
    """An upstream message fit to show: one line, not too long."""
    text = " ".join(str(detail or "").split())
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "…"


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds a response asks us to wait, from `retry-after-ms` or `Retry-After`
    (seconds or an HTTP date); None when it does not say."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(float(milliseconds) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def timeout_error() -> ProviderError:
    return ProviderError("timeout", _("The model service took too long to respond."))


def unreachable_error() -> ProviderError:
    return ProviderError(
        "provider_unreachable", _("The model service could not be reached. Please try again.")
    )


def interrupted_error() -> ProviderError:
    return ProviderError(
        "stream_interrupted", _("The connection to the model service broke off during the answer.")
    )


def incomplete_error() -> ProviderError:
    return ProviderError("incomplete_stream", _("The model stopped without finishing its answer."))


def status_error(
    status: int, detail: str, *, model: str, quota_exhausted: bool = False
) -> ProviderError:
    """The error for an HTTP error status from a model service; `detail` is its message."""
    if status in (401, 403):
        return ProviderError(
            "provider_auth",
            _("The model service refused our credentials. Please tell the site administrator."),
        )
    if status == 429 and quota_exhausted:
        return ProviderError(
            "quota_exceeded",
            _("The model service account has no quota left. Please tell the site administrator."),
        )
    if status == 429:
        return ProviderError(
            "rate_limited", _("The model service is busy right now. Please try again in a minute.")
        )
    if status == 404:
        return ProviderError(
            "model_not_found",
            _("The model “%(model)s” is not available on the model service.") % {"model": model},
        )
    if status in (400, 413, 422):
        return ProviderError(
            "bad_request",
            _("The model service could not accept this request: %(detail)s")
            % {"detail": trimmed(detail)},
        )
    if status in (408, 504):
        return timeout_error()
    if status >= 500:
        return ProviderError(
            "provider_unavailable",
            _("The model service is unavailable right now. Please try again shortly."),
        )
    return ProviderError(
        "provider_error",
        _("The model service answered with an error (%(status)s): %(detail)s")
        % {"status": status, "detail": trimmed(detail)},
    )
