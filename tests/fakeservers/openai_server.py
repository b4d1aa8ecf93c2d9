"""A fake OpenAI Chat Completions endpoint that streams like the real one.

`POST /v1/chat/completions` with `"stream": true` answers with the same
server-sent events OpenAI sends: a first chunk with the assistant role, one
chunk per content delta, a chunk carrying `finish_reason`, then (when the
request asked for `stream_options.include_usage`) a chunk with empty `choices`
and the `usage`, and `data: [DONE]`. Errors come back with OpenAI's JSON error
body and whatever headers the behaviour gives (`Retry-After`, say).

In a test:

    with OpenAIFakeServer() as server:
        server.enqueue(Behaviour(status=429, headers={"Retry-After": "1"}))
        ...  # point the client at server.url + "/v1"

For a benchmark, in a process of its own (prints the bound port):

    python -m tests.fakeservers.openai_server --port 8765 --tokens 100 --rate 50
"""

from __future__ import annotations

import argparse
import itertools
import json
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


_ERRORS = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The engine is currently overloaded."),
}


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


class OpenAIFakeServer(FakeHTTPServer[Behaviour]):
    def __init__(self, default: Behaviour | None = None, **kwargs: Any) -> None:
        super().__init__(default or Behaviour(), **kwargs)

    async def respond(self, exchange: Exchange, behaviour: Behaviour) -> None:
        request = exchange.request
        if request.method != "POST" or request.path != "/v1/chat/completions":
            await exchange.send_json(404, _error_body(f"Unknown URL {request.path}", None))
            return
        if behaviour.status != 200:
            error_type, code, message = _ERRORS.get(behaviour.status, ("server_error", None, ""))
            body = _error_body(
                behaviour.error_message or message,
                behaviour.error_code or code,
                error_type,
            )
            await exchange.send_json(behaviour.status, body, behaviour.headers)
            return
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
            return json.dumps({**base, "choices": [choice]}, ensure_ascii=False)

        await exchange.start_stream(behaviour.headers)
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


def _error_body(message: str, code: str | None, error_type: str = "invalid_request_error") -> dict:
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake streaming OpenAI chat endpoint.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--tokens", type=int, default=100, help="tokens in every answer")
    parser.add_argument("--rate", type=float, default=50.0, help="tokens a second (0: at once)")
    parser.add_argument("--first-token-delay", type=float, default=0.0, help="seconds")
    args = parser.parse_args(argv)
    behaviour = Behaviour(
        tokens=default_tokens(args.tokens),
        first_token_delay=args.first_token_delay,
        token_interval=1 / args.rate if args.rate > 0 else 0.0,
    )
    serve_from_command_line(OpenAIFakeServer(behaviour, host=args.host, port=args.port))


if __name__ == "__main__":
    main()
