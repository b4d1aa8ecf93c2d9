"""Server-Sent Events framing and the response that carries them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from asgiref.sync import SyncToAsync
from django.db import connections
from django.http import HttpRequest, StreamingHttpResponse

_LINE_BREAK = re.compile(r"\r\n|\r|\n")

SSE_HEADERS = {
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
}


def sse_event(event_id: int, name: str, data: str) -> bytes:
    """One event. Every line break in `data` (CR, LF or CRLF) starts a new `data:`
    line, so text from a model can never start a field of its own."""
    lines = "".join(f"data: {line}\n" for line in _LINE_BREAK.split(data))
    return f"id: {event_id}\nevent: {name}\n{lines}\n".encode()


def sse_comment(text: str) -> bytes:
    return f": {_LINE_BREAK.sub(' ', text)}\n\n".encode()


def sse_retry(milliseconds: int) -> bytes:
    return f"retry: {milliseconds}\n\n".encode()


def last_event_id(request: HttpRequest) -> int:
    """Where a reader resumes: the Last-Event-ID header (set by EventSource on
    reconnect) or `?last_event_id=`; anything unreadable means the start."""
    raw = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id") or "0"
    try:
        return max(0, int(raw.strip()))
    except ValueError:
        return 0


def release_request_connections() -> None:
    """Close the connections of the current thread unless a transaction is open.

    A streaming view calls this (on its request's thread) once its checks are
    done, so that the connection is not held while the stream lasts."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def _release_request_thread() -> None:
    """Let the request's thread go while its stream lasts.

    Django's ASGI handler gives each request a thread for its synchronous parts
    (every MiddlewareMixin step runs there) and keeps it until the response is
    finished: for an event stream, its whole length, so a thousand open
    streams would hold a thousand idle threads and their stacks. Once the
    stream starts, those parts are done. The thread closes its database
    connections (back to the pool) and ends; a later synchronous call in the
    request gets a new one.
    """
    try:
        context = SyncToAsync.thread_sensitive_context.get()
    except LookupError:
        return
    executor = SyncToAsync.context_to_thread_executor.pop(context, None)
    if executor is not None:
        executor.submit(release_request_connections)
        executor.shutdown(wait=False)


async def _without_request_thread(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    _release_request_thread()
    async for chunk in stream:
        yield chunk


def event_stream_response(stream: AsyncIterator[bytes]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        _without_request_thread(stream), content_type="text/event-stream; charset=utf-8"
    )
    for header, value in SSE_HEADERS.items():
        response[header] = value
    return response
