"""The small HTTP/1.1 server under each fake model service.

One request a connection (every response says `Connection: close`), streamed
answers in chunked transfer encoding as the real services send them, and a
record of what each client did: the requests, how many were in flight, and
when a client hung up before its answer was finished. Everything runs on one
event loop, so a thousand concurrent streams cost no threads.

A server runs either on a background thread of the test process (`start()`,
`stop()`, or as a context manager) or as a process of its own (each fake's command
line, for the benchmarks).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

BehaviourT = TypeVar("BehaviourT")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    index: int
    method: str
    target: str  # the path with its query string
    headers: dict[str, str]  # names in lower case
    body: Any  # the JSON body, parsed; None when there was none or it was not JSON
    received_at: float  # time.monotonic()

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]


@dataclass(frozen=True, slots=True)
class Disconnect:
    """A client that closed its connection before its response was complete."""

    request_index: int
    at: float  # time.monotonic()


class ClientGone(Exception):
    """The client hung up while the response was being written."""


class Exchange:
    """One request and the response being written to it."""

    def __init__(
        self,
        request: RecordedRequest,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_finished: Callable[[], None] = lambda: None,
    ) -> None:
        self.request = request
        self._on_finished = on_finished
        self._writer = writer
        # The client sends nothing after its request, so the end of its side of
        # the connection (or a reset) means it has gone away.
        self._hangup = asyncio.ensure_future(reader.read(1))
        self._hangup.add_done_callback(_consume_exception)
        self.finished = False
        self.died = False

    async def pause(self, seconds: float) -> None:
        """Wait, but stop at once (ClientGone) if the client hangs up meanwhile."""
        if seconds > 0:
            await asyncio.wait([self._hangup], timeout=seconds)
        if self._hangup.done():
            raise ClientGone

    async def send_json(
        self, status: int, payload: Any, headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps(payload).encode()
        head = {"Content-Type": "application/json; charset=UTF-8", **(headers or {})}
        head["Content-Length"] = str(len(body))
        self._finish()
        await self._write(self._head(status, head) + body)

    async def start_stream(self, headers: dict[str, str] | None = None) -> None:
        head = {
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            **(headers or {}),
            "Transfer-Encoding": "chunked",
        }
        await self._write(self._head(200, head))

    async def send_event(self, data: str) -> None:
        """One server-sent event carrying `data`, as one HTTP chunk."""
        payload = f"data: {data}\n\n".encode()
        await self._write(b"%x\r\n%s\r\n" % (len(payload), payload))

    async def end_stream(self) -> None:
        self._finish()
        await self._write(b"0\r\n\r\n")

    def _finish(self) -> None:
        # Counted before the last bytes go out: a client that has read the
        # whole answer must find it counted, whichever side runs first.
        self.finished = True
        self._on_finished()

    async def die(self) -> None:
        """Close the connection in the middle of the response, as a crashed upstream does."""
        with contextlib.suppress(ConnectionError):
            await self._writer.drain()
        self.died = True
        self._writer.close()

    def close(self) -> None:
        self._hangup.cancel()

    @staticmethod
    def _head(status: int, headers: dict[str, str]) -> bytes:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += ["Connection: close", "", ""]
        return "\r\n".join(lines).encode("latin-1")

    async def _write(self, data: bytes) -> None:
        if self._hangup.done():
            raise ClientGone
        self._writer.write(data)
        try:
            await self._writer.drain()
        except ConnectionError as exc:
            raise ClientGone from exc


def _consume_exception(task: asyncio.Future) -> None:
    if not task.cancelled():
        task.exception()


class FakeHTTPServer(Generic[BehaviourT]):
    """What every fake shares: sockets, parsing, scripting and the record.

    Subclasses implement `respond(exchange, behaviour)`. A behaviour queued
    with `enqueue` applies to the next request; then `default` applies again.
    """

    def __init__(self, default: BehaviourT, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.default = default
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        self.disconnects: list[Disconnect] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.completed = 0
        self._script: deque[BehaviourT] = deque()
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._handlers: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def enqueue(self, *behaviours: BehaviourT) -> None:
        self._script.extend(behaviours)

    async def respond(self, exchange: Exchange, behaviour: BehaviourT) -> None:
        raise NotImplementedError

    # --- Running -------------------------------------------------------------

    async def open(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, backlog=4096, limit=1 << 20
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def start(self) -> Self:
        """Serve on a background thread with its own event loop."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.open())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.close())
                loop.close()

        self._thread = threading.Thread(target=run, name=type(self).__name__, daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- One connection ------------------------------------------------------

    def _count_completed(self) -> None:
        self.completed += 1

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        exchange: Exchange | None = None
        try:
            request = await self._read_request(reader)
            if request is None:
                return
            behaviour = self._script.popleft() if self._script else self.default
            exchange = Exchange(request, reader, writer, self._count_completed)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await self.respond(exchange, behaviour)
            except ClientGone:
                self.disconnects.append(Disconnect(request.index, time.monotonic()))
            finally:
                self.in_flight -= 1
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            if exchange is not None:
                exchange.close()
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()
            if task is not None:
                self._handlers.discard(task)

    async def _read_request(self, reader: asyncio.StreamReader) -> RecordedRequest | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None  # connected and left without asking anything
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, _version = request_line.split(" ", 2)
        headers: dict[str, str] = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        raw = await reader.readexactly(int(headers.get("content-length", "0") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = RecordedRequest(
            index=len(self.requests),
            method=method,
            target=target,
            headers=headers,
            body=body,
            received_at=time.monotonic(),
        )
        self.requests.append(request)
        return request


def serve_from_command_line(server: FakeHTTPServer) -> None:
    """Serve in this process until interrupted, after printing the bound port."""
    # A thousand streams need a thousand sockets; lift the soft limit as far as allowed.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    async def main() -> None:
        await server.open()
        print(server.port, flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
