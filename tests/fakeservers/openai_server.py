"""A fake OpenAI Chat Completions endpoint that streams like the real one.

`POST /v1/chat/completions` with `"stream": true` answers with the same
server-sent events OpenAI sends: a first chunk with the assistant role, one
chunk per content delta, a chunk carrying `finish_reason`, then (when the
request asked for `stream_options.include_usage`) a chunk with empty `choices`
and the `usage`, and `data: [DONE]`. Errors come back with OpenAI's JSON error
body and whatever headers the behaviour gives (`Retry-After`, say).

`POST /v1/images/generations` answers as the Images API does: without
`"stream"`, JSON with every image in `data[].b64_json` and the `usage`; with
`"stream": true`, an `image_generation.partial_image` event for each partial
rendering asked for (`partial_images`), then one `image_generation.completed`
carrying the image and the usage. Images are real PNGs (made with Pillow).

In a test:

    with OpenAIFakeServer() as server:
        server.enqueue(Behaviour(status=429, headers={"Retry-After": "1"}))
        ...  # point the client at server.url + "/v1"

For a benchmark, in a process of its own (prints the bound port):

    python -m tests.fakeservers.openai_server --port 8765 --tokens 100 --rate 50
"""

from __future__ import annotations

import argparse
import base64
import functools
import io
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakeservers.http11 import Exchange, FakeHTTPServer, serve_from_command_line

_ANSWER = (
    "Thank you for taking the time to meet with us last week. We appreciated your "
    "thoughtful questions about the schedule, and we have attached a revised plan "
    "that reflects the changes we discussed. Please let us know if anything needs "
    "further adjustment, and we will follow up before the end of the month."
)


def default_tokens(count: int = 100) -> list[str]:
    """A deterministic English answer of `count` tokens (a word with its leading space)."""
    words = itertools.islice(itertools.cycle(_ANSWER.split()), count)
    return [word if number == 0 else f" {word}" for number, word in enumerate(words)]


_MARKDOWN_ANSWER = """## Summary

Thank you for taking the time to meet with us last week. We appreciated your
**thoughtful questions** about the schedule, and we have attached a *revised plan*.

## Next steps

1. Confirm the revised schedule by **Friday**.
2. Share the budget with the finance team.
3. Book a follow-up call for the end of the month.

| Item | Owner | Due |
| --- | --- | --- |
| Schedule | Sato | Friday |
| Budget | Kaito | Next week |

> Please let us know if anything needs further adjustment.

```
plan: revised
status: ready
```

- A short list item with a [link](https://example.com/plan)
- Another item with `inline code`

"""


def markdown_tokens(count: int = 100) -> list[str]:
    """A deterministic Markdown answer of `count` tokens (headings, lists, a table,
    a quote, code), each token a word with the white space before it."""
    pieces = re.findall(r"\s*\S+", "\n\n" + _MARKDOWN_ANSWER)
    tokens = list(itertools.islice(itertools.cycle(pieces), count))
    return [tokens[0].lstrip(), *tokens[1:]] if tokens else tokens


_ERRORS = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The engine is currently overloaded."),
}

MODERATION_MESSAGE = (
    "Your request was rejected by the safety system. If you believe this is an error, "
    "contact us at help.openai.com and include the request ID req_fake in your message."
)
# What OpenAI sends when its safety system refuses an image request or stops its stream.
MODERATION_ERROR = {
    "message": MODERATION_MESSAGE,
    "type": "image_generation_user_error",
    "param": None,
    "code": "moderation_blocked",
}
_SIZE = re.compile(r"^(auto|\d+x\d+)$")


@functools.cache
def png(width: int = 64, height: int = 64, color: tuple[int, int, int] = (40, 120, 200)) -> bytes:
    """A small real PNG of one colour."""
    from PIL import Image  # only image requests need Pillow

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def partial_png(number: int) -> bytes:
    """The `number`th (0-based) partial rendering: greyer the earlier it comes."""
    shade = 60 + 40 * number
    return png(color=(shade, shade, shade))


@dataclass
class Behaviour:
    """How the fake answers one request."""

    tokens: list[str] = field(default_factory=default_tokens)
    # Seconds from the response headers to the first content chunk, and between chunks.
    first_token_delay: float = 0.0
    token_interval: float = 0.0
    # "stop", "length", "content_filter"...; None ends the stream without one.
    finish_reason: str | None = "stop"
    # A status other than 200 answers with an OpenAI error body instead of a stream.
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    error_message: str = ""
    error_code: str | None = None
    # Close the connection abruptly after this many content chunks.
    die_after: int | None = None
    include_usage: bool = True
    prompt_tokens: int = 21
    error_type: str | None = None  # the error body's "type", when not the status's usual one
    # Held after the response headers until this is set (a test's gate).
    gate: threading.Event | None = None
    # --- Images. `first_token_delay` is the wait before the first event (or the
    # JSON answer), `token_interval` the wait between events, and `die_after`
    # closes the connection after that many partial renderings.
    image: bytes | None = None  # what every image decodes to; None: png()
    image_b64: str | None = None  # sent instead of the image's base64 (say, not base64)
    partial_images: int | None = None  # partial renderings sent; None: as many as asked
    stream_error: dict | None = None  # an error event sent after the partial renderings


class OpenAIFakeServer(FakeHTTPServer[Behaviour]):
    def __init__(self, default: Behaviour | None = None, **kwargs: Any) -> None:
        super().__init__(default or Behaviour(), **kwargs)

    async def respond(self, exchange: Exchange, behaviour: Behaviour) -> None:
        request = exchange.request
        routes = {
            "/v1/chat/completions": self._chat,
            "/v1/images/generations": self._images,
        }
        route = routes.get(request.path)
        if request.method != "POST" or route is None:
            await exchange.send_json(404, _error_body(f"Unknown URL {request.path}", None))
            return
        if behaviour.status != 200:
            error_type, code, message = _ERRORS.get(behaviour.status, ("server_error", None, ""))
            body = _error_body(
                behaviour.error_message or message,
                behaviour.error_code or code,
                behaviour.error_type or error_type,
            )
            await exchange.send_json(behaviour.status, body, behaviour.headers)
            return
        await route(exchange, behaviour)

    async def _chat(self, exchange: Exchange, behaviour: Behaviour) -> None:
        request = exchange.request
        payload = request.body if isinstance(request.body, dict) else {}
        if not payload.get("stream"):
            message = "This fake only answers streaming requests."
            await exchange.send_json(400, _error_body(message, None))
            return
        await self._stream(exchange, behaviour, payload)

    async def _stream(self, exchange: Exchange, behaviour: Behaviour, payload: dict) -> None:
        include_usage = behaviour.include_usage and bool(
            (payload.get("stream_options") or {}).get("include_usage")
        )
        base = {
            "id": f"chatcmpl-fake{exchange.request.index:06d}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": payload.get("model", ""),
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }
        if include_usage:
            base["usage"] = None  # every chunk but the last says so, as OpenAI's do

        def chunk(delta: dict, finish_reason: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return _json({**base, "choices": [choice]})

        await exchange.start_stream(behaviour.headers)
        while behaviour.gate is not None and not behaviour.gate.is_set():
            await exchange.pause(0.02)
        await exchange.pause(behaviour.first_token_delay)
        await exchange.send_event(chunk({"role": "assistant", "content": "", "refusal": None}))
        for number, token in enumerate(behaviour.tokens):
            if number == behaviour.die_after:
                await exchange.die()
                return
            if number:
                await exchange.pause(behaviour.token_interval)
            await exchange.send_event(chunk({"content": token}))
        if behaviour.die_after is not None and behaviour.die_after >= len(behaviour.tokens):
            await exchange.die()
            return
        if behaviour.finish_reason is not None:
            await exchange.send_event(chunk({}, behaviour.finish_reason))
        if include_usage:
            completion = len(behaviour.tokens)
            usage = {
                "prompt_tokens": behaviour.prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": behaviour.prompt_tokens + completion,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
            }
            await exchange.send_event(json.dumps({**base, "choices": [], "usage": usage}))
        await exchange.send_event("[DONE]")
        await exchange.end_stream()

    # --- Images ------------------------------------------------------------------

    async def _images(self, exchange: Exchange, behaviour: Behaviour) -> None:
        payload = exchange.request.body if isinstance(exchange.request.body, dict) else {}
        problem = _image_request_problem(payload)
        if problem:
            await exchange.send_json(400, _error_body(problem[1], None, param=problem[0]))
            return
        image = behaviour.image_b64 or base64.b64encode(behaviour.image or png()).decode()
        settings = {
            "background": payload.get("background") or "opaque",
            "output_format": payload.get("output_format") or "png",
            "quality": payload.get("quality") or "medium",
            "size": payload.get("size") or "1024x1024",
        }
        prompt_tokens = max(len(payload["prompt"].split()), 1)
        usage = {
            "input_tokens": prompt_tokens,
            "input_tokens_details": {"image_tokens": 0, "text_tokens": prompt_tokens},
            "output_tokens": 1056,
            "total_tokens": prompt_tokens + 1056,
        }
        await exchange.pause(behaviour.first_token_delay)
        if not payload.get("stream"):
            count = payload.get("n") or 1
            answer = {
                "created": int(time.time()),
                **settings,
                "data": [{"b64_json": image} for _ in range(count)],
                "usage": {
                    **usage,
                    "output_tokens": usage["output_tokens"] * count,
                    "total_tokens": prompt_tokens + usage["output_tokens"] * count,
                    "output_tokens_details": {
                        "image_tokens": usage["output_tokens"] * count,
                        "text_tokens": 0,
                    },
                },
            }
            await exchange.send_json(200, answer, behaviour.headers)
            return
        asked = payload.get("partial_images") or 0
        partials = asked if behaviour.partial_images is None else behaviour.partial_images
        await exchange.start_stream(behaviour.headers)
        for number in range(partials):
            if number == behaviour.die_after:
                await exchange.die()
                return
            if number:
                await exchange.pause(behaviour.token_interval)
            event = {
                "type": "image_generation.partial_image",
                "b64_json": base64.b64encode(partial_png(number)).decode(),
                "partial_image_index": number,
                "created_at": int(time.time()),
                **settings,
            }
            await _send_named_event(exchange, event["type"], event)
        if behaviour.die_after is not None and behaviour.die_after >= partials:
            await exchange.die()
            return
        if behaviour.stream_error is not None:
            await _send_named_event(
                exchange, "error", {"type": "error", "error": behaviour.stream_error}
            )
            await exchange.end_stream()
            return
        await exchange.pause(behaviour.token_interval if partials else 0)
        event = {
            "type": "image_generation.completed",
            "b64_json": image,
            "created_at": int(time.time()),
            **settings,
            "usage": usage,
        }
        await _send_named_event(exchange, event["type"], event)
        await exchange.end_stream()


def _image_request_problem(payload: dict) -> tuple[str, str] | None:
    """(parameter, message) for a request the Images API would refuse; None when fine."""
    if not isinstance(payload.get("prompt"), str) or not payload["prompt"]:
        return "prompt", "Missing required parameter: 'prompt'."
    if not isinstance(payload.get("model"), str):
        return "model", "Missing required parameter: 'model'."
    count = payload.get("n", 1)
    if not isinstance(count, int) or not 1 <= count <= 10:
        return "n", f"Invalid 'n': expected an integer between 1 and 10, got {count!r}."
    size = payload.get("size", "auto")
    if not isinstance(size, str) or not _SIZE.match(size):
        return "size", f"Invalid value: {size!r}. Expected a size such as '1024x1024'."
    partials = payload.get("partial_images")
    if partials is not None:
        if not isinstance(partials, int) or not 0 <= partials <= 3:
            return "partial_images", "Invalid 'partial_images': expected 0 to 3."
        if not payload.get("stream"):
            return "partial_images", "'partial_images' is only supported when streaming."
    return None


async def _send_named_event(exchange: Exchange, name: str, payload: dict) -> None:
    """One server-sent event with an `event:` line, as one HTTP chunk, as the Images API
    sends them (Exchange.send_event writes a `data:` line only)."""
    data = f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()
    await exchange._write(b"%x\r\n%s\r\n" % (len(data), data))


def _json(body: dict) -> str:
    """UTF-8 JSON as OpenAI sends it; text that has no UTF-8 form (a lone
    surrogate, which a hostile or broken upstream can send) as \\u escapes."""
    text = json.dumps(body, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(body)
    return text


def _error_body(
    message: str,
    code: str | None,
    error_type: str = "invalid_request_error",
    param: str | None = None,
) -> dict:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake streaming OpenAI chat endpoint.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--tokens", type=int, default=100, help="tokens in every answer")
    parser.add_argument("--rate", type=float, default=50.0, help="tokens a second (0: at once)")
    parser.add_argument("--first-token-delay", type=float, default=0.0, help="seconds")
    parser.add_argument("--markdown", action="store_true", help="answer in Markdown")
    args = parser.parse_args(argv)
    behaviour = Behaviour(
        tokens=(markdown_tokens if args.markdown else default_tokens)(args.tokens),
        first_token_delay=args.first_token_delay,
        token_interval=1 / args.rate if args.rate > 0 else 0.0,
    )
    serve_from_command_line(OpenAIFakeServer(behaviour, host=args.host, port=args.port))


if __name__ == "__main__":
    main()
