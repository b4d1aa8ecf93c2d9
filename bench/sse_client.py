"""A small raw HTTP/1.1 client for the benchmark: cheap enough that a thousand
streams measure the server, not the client. Both sides of every comparison go
through it."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class StreamResult:
    started: float
    first_delta: float | None = None
    finished: float | None = None
    # Arrival time of every event that carried text.
    arrivals: list[float] = field(default_factory=list)
    text: str = ""
    error: str = ""


async def _open(host: str, port: int, method: str, path: str, headers: dict, body: bytes):
    reader, writer = await asyncio.open_connection(host, port, limit=2**20)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    response_headers = {}
    for line in header_lines:
        if ":" in line:
            name, value = line.split(":", 1)
            response_headers[name.strip().lower()] = value.strip()
    return reader, writer, Response(status, response_headers)


async def _body_chunks(reader: asyncio.StreamReader, headers: dict[str, str]):
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                return
            data = await reader.readexactly(size + 2)
            yield data[:-2]
    elif "content-length" in headers:
        yield await reader.readexactly(int(headers["content-length"]))
    else:
        while data := await reader.read(65536):
            yield data


async def request(
    host: str, port: int, method: str, path: str, *, headers=None, json_body=None
) -> Response:
    body = json.dumps(json_body).encode() if json_body is not None else b""
    headers = dict(headers or {})
    if body:
        headers["Content-Type"] = "application/json"
    reader, writer, response = await _open(host, port, method, path, headers, body)
    try:
        response.body = b"".join([chunk async for chunk in _body_chunks(reader, response.headers)])
    finally:
        writer.close()
    return response


async def read_events(
    host: str,
    port: int,
    path: str,
    result: StreamResult,
    *,
    method: str = "GET",
    headers=None,
    json_body=None,
    text_of=None,
    stop_at_first: bool = False,
    expect_status: int = 200,
) -> StreamResult:
    """Read a server-sent event stream to its end (or its first text), timing it.

    `text_of(event_name, data)` returns the text an event carries, if any.
    """
    body = json.dumps(json_body).encode() if json_body is not None else b""
    headers = dict(headers or {})
    if body:
        headers["Content-Type"] = "application/json"
    reader, writer, response = await _open(host, port, method, path, headers, body)
    if response.status != expect_status:
        result.error = f"HTTP {response.status}"
        writer.close()
        return result
    buffer = b""
    try:
        async for chunk in _body_chunks(reader, response.headers):
            buffer += chunk
            while b"\n\n" in buffer:
                raw, buffer = buffer.split(b"\n\n", 1)
                name, data = "message", []
                for line in raw.decode().split("\n"):
                    if line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].removeprefix(" "))
                if not data:
                    continue
                text = text_of(name, "\n".join(data))
                now = time.perf_counter()
                if text:
                    result.arrivals.append(now)
                    result.text += text
                    if result.first_delta is None:
                        result.first_delta = now
                        if stop_at_first:
                            return result
                if name == "done":
                    result.finished = now
                    return result
        result.finished = time.perf_counter()
        return result
    finally:
        writer.close()
