"""A fake Vertex AI Gemini endpoint that streams like the real one.

It answers the URL google-genai calls in Vertex mode for a streamed answer,

    POST /v1beta1/projects/{project}/locations/{location}/publishers/google/models/{model}:streamGenerateContent?alt=sse

with server-sent events of `GenerateContentResponse` JSON: candidates with
text parts, the last carrying `finishReason` and the full `usageMetadata`.
A prompt blocked outright gets one event with `promptFeedback.blockReason` and
no candidates. Errors come back with Google's JSON error body. Each request's
`Authorization: Bearer …` header is recorded, so a test can check which
credential token was sent (see tests.fakeservers.credentials).

For a benchmark, in a process of its own (prints the bound port):

    python -m tests.fakeservers.vertex_server --port 8766 --tokens 100 --rate 50
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.fakeservers.http11 import Exchange, FakeHTTPServer, serve_from_command_line
from tests.fakeservers.openai_server import default_tokens

STREAM_PATH = re.compile(
    r"^/(?P<version>v1beta1|v1)/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/publishers/google/models/(?P<model>[^/:]+):streamGenerateContent$"
)

_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_MESSAGES = {
    400: "Request contains an invalid argument.",
    401: "Request had invalid authentication credentials.",
    403: "Permission denied on resource project.",
    404: "Publisher Model was not found or your project does not have access to it.",
    429: "Resource exhausted. Please try again later.",
    500: "Internal error encountered.",
    503: "The service is currently unavailable.",
    504: "Deadline exceeded.",
}


@dataclass
class Behaviour:
    """How the fake answers one request."""

    tokens: list[str] = field(default_factory=default_tokens)
    first_token_delay: float = 0.0
    token_interval: float = 0.0
    # "STOP", "MAX_TOKENS", "SAFETY", "RECITATION"...; None ends the stream without one.
    finish_reason: str | None = "STOP"
    # A reason ("SAFETY", "PROHIBITED_CONTENT"...) blocks the prompt: no candidates at all.
    block_reason: str | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    error_message: str = ""
    die_after: int | None = None
    prompt_tokens: int = 17


class VertexFakeServer(FakeHTTPServer[Behaviour]):
    def __init__(self, default: Behaviour | None = None, **kwargs: Any) -> None:
        super().__init__(default or Behaviour(), **kwargs)

    async def respond(self, exchange: Exchange, behaviour: Behaviour) -> None:
        request = exchange.request
        match = STREAM_PATH.match(request.path)
        if request.method != "POST" or match is None or "alt=sse" not in request.query:
            await exchange.send_json(404, _error_body(404, f"No such method: {request.target}"))
            return
        if behaviour.status != 200:
            message = behaviour.error_message or _MESSAGES.get(behaviour.status, "Error.")
            body = _error_body(behaviour.status, message)
            await exchange.send_json(behaviour.status, body, behaviour.headers)
            return
        await self._stream(exchange, behaviour, match["model"])

    async def _stream(self, exchange: Exchange, behaviour: Behaviour, model: str) -> None:
        base = {
            "modelVersion": model,
            "createTime": datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds"),
            "responseId": uuid.uuid4().hex[:24],
        }
        tokens = behaviour.tokens

        def usage(candidates: int | None) -> dict:
            counts: dict[str, Any] = {"promptTokenCount": behaviour.prompt_tokens}
            if candidates is not None:
                counts["candidatesTokenCount"] = candidates
            counts["totalTokenCount"] = behaviour.prompt_tokens + (candidates or 0)
            counts["trafficType"] = "ON_DEMAND"
            return counts

        def event(payload: dict) -> str:
            return json.dumps({**payload, **base}, ensure_ascii=False)

        def text_candidate(text: str) -> dict:
            return {"content": {"role": "model", "parts": [{"text": text}]}}

        await exchange.start_stream(behaviour.headers)
        await exchange.pause(behaviour.first_token_delay)
        if behaviour.block_reason:
            feedback = {"blockReason": behaviour.block_reason, "blockReasonMessage": "Blocked."}
            await exchange.send_event(
                event({"promptFeedback": feedback, "usageMetadata": usage(None)})
            )
            await exchange.end_stream()
            return
        # Google puts the last text on the chunk that says why it stopped,
        # unless a filter stopped it: then that chunk has no content.
        filtered = behaviour.finish_reason not in (None, "STOP", "MAX_TOKENS")
        last_in_body = len(tokens) - (0 if filtered or behaviour.finish_reason is None else 1)
        for number, token in enumerate(tokens[:last_in_body]):
            if number == behaviour.die_after:
                await exchange.die()
                return
            if number:
                await exchange.pause(behaviour.token_interval)
            partial = {"trafficType": "ON_DEMAND"}
            await exchange.send_event(
                event({"candidates": [text_candidate(token)], "usageMetadata": partial})
            )
        if behaviour.die_after is not None and behaviour.die_after >= last_in_body:
            await exchange.die()
            return
        if behaviour.finish_reason is not None:
            if last_in_body:
                await exchange.pause(behaviour.token_interval)
            candidate: dict[str, Any] = {} if filtered or not tokens else text_candidate(tokens[-1])
            candidate["finishReason"] = behaviour.finish_reason
            if filtered:
                candidate["safetyRatings"] = [
                    {
                        "category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                        "probability": "HIGH",
                        "blocked": True,
                    }
                ]
            await exchange.send_event(
                event({"candidates": [candidate], "usageMetadata": usage(len(tokens))})
            )
        await exchange.end_stream()


def _error_body(status: int, message: str) -> dict:
    return {"error": {"code": status, "message": message, "status": _STATUSES.get(status, "")}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake streaming Vertex AI Gemini endpoint.")
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
    serve_from_command_line(VertexFakeServer(behaviour, host=args.host, port=args.port))


if __name__ == "__main__":
    main()
