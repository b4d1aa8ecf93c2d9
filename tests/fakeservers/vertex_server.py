"""A fake Vertex AI Gemini endpoint that streams like the real one.

It answers the URL google-genai calls in Vertex mode for a streamed answer,

    POST /v1beta1/projects/{project}/locations/{location}/publishers/google/models/{model}:streamGenerateContent?alt=sse

with server-sent events of `GenerateContentResponse` JSON: candidates with
text parts, the last carrying `finishReason` and the full `usageMetadata`.
A prompt blocked outright gets one event with `promptFeedback.blockReason` and
no candidates. Errors come back with Google's JSON error body. Each request's
`Authorization: Bearer …` header is recorded, so a test can check which
credential token was sent (see tests.fakeservers.credentials).

It also answers Imagen's URL, as google-genai's `models.generate_images` calls it,

    POST /v1beta1/projects/{project}/locations/{location}/publishers/google/models/{model}:predict

with `{"predictions": [...]}`: one `{"bytesBase64Encoded", "mimeType"}` per
image, and one `{"raiFilteredReason"}` per image the Responsible AI filter
withheld. The request is checked as Imagen checks it (`instances[0].prompt`,
`parameters.sampleCount` 1-4, a known `aspectRatio`, `outputOptions.mimeType`);
a malformed one gets a 400.

For a benchmark, in a process of its own (prints the bound port):

    python -m tests.fakeservers.vertex_server --port 8766 --tokens 100 --rate 50
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.fakeservers.http11 import Exchange, FakeHTTPServer, serve_from_command_line
from tests.fakeservers.openai_server import default_tokens, png

STREAM_PATH = re.compile(
    r"^/(?P<version>v1beta1|v1)/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/publishers/google/models/(?P<model>[^/:]+):streamGenerateContent$"
)
PREDICT_PATH = re.compile(
    r"^/(?P<version>v1beta1|v1)/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/publishers/google/models/(?P<model>[^/:]+):predict$"
)
_ASPECT_RATIOS = {"1:1", "3:4", "4:3", "9:16", "16:9"}
_MIME_TYPES = {"image/png", "image/jpeg"}
# How Imagen words a withheld image (its support codes name the filter).
RAI_REASON = (
    "Unfortunately, we couldn't generate the image because it may violate Google's "
    "Responsible AI practices. Try rephrasing the prompt. Support codes: 58061214"
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
    # --- Imagen. The last len(filtered) of the images asked for are withheld, with
    # these reasons (all of them when there are as many reasons as images).
    filtered: list[str] = field(default_factory=list)
    image: bytes | None = None  # what every image decodes to; None: a 64x64 PNG
    image_b64: str | None = None  # sent instead of the image's base64 (say, not base64)
    enhanced_prompt: str | None = None  # Imagen's rewrite of the prompt, sent with each image


class VertexFakeServer(FakeHTTPServer[Behaviour]):
    def __init__(self, default: Behaviour | None = None, **kwargs: Any) -> None:
        super().__init__(default or Behaviour(), **kwargs)

    async def respond(self, exchange: Exchange, behaviour: Behaviour) -> None:
        request = exchange.request
        stream = STREAM_PATH.match(request.path)
        predict = PREDICT_PATH.match(request.path)
        if stream is not None and "alt=sse" not in request.query:
            stream = None
        if request.method != "POST" or (stream is None and predict is None):
            await exchange.send_json(404, _error_body(404, f"No such method: {request.target}"))
            return
        if behaviour.status != 200:
            message = behaviour.error_message or _MESSAGES.get(behaviour.status, "Error.")
            body = _error_body(behaviour.status, message)
            await exchange.send_json(behaviour.status, body, behaviour.headers)
            return
        if predict is not None:
            await self._predict(exchange, behaviour)
            return
        await self._stream(exchange, behaviour, stream["model"])

    async def _predict(self, exchange: Exchange, behaviour: Behaviour) -> None:
        body = exchange.request.body if isinstance(exchange.request.body, dict) else {}
        problem = _predict_problem(body)
        if problem:
            await exchange.send_json(400, _error_body(400, problem))
            return
        parameters = body.get("parameters") or {}
        count = parameters.get("sampleCount", 4)
        mime_type = (parameters.get("outputOptions") or {}).get("mimeType", "image/png")
        image = behaviour.image_b64 or base64.b64encode(behaviour.image or png()).decode()
        reasons = behaviour.filtered[:count]
        prediction: dict[str, Any] = {"bytesBase64Encoded": image, "mimeType": mime_type}
        if behaviour.enhanced_prompt is not None:
            prediction["prompt"] = behaviour.enhanced_prompt
        predictions: list[dict[str, Any]] = [dict(prediction) for _ in range(count - len(reasons))]
        if parameters.get("includeRaiReason"):
            predictions += [{"raiFilteredReason": reason} for reason in reasons]
        await exchange.pause(behaviour.first_token_delay)
        if behaviour.die_after is not None:  # any number: hang up instead of answering
            await exchange.die()
            return
        # Imagen leaves "predictions" out altogether when it has nothing to send.
        await exchange.send_json(200, {"predictions": predictions} if predictions else {})

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


def _predict_problem(body: dict) -> str | None:
    """Why Imagen would refuse this :predict request; None when it would not."""
    instances = body.get("instances")
    if not isinstance(instances, list) or len(instances) != 1:
        return "Invalid instances: exactly one instance is expected."
    prompt = instances[0].get("prompt") if isinstance(instances[0], dict) else None
    if not isinstance(prompt, str) or not prompt.strip():
        return "Image generation failed with the following error: The prompt is empty."
    parameters = body.get("parameters") or {}
    count = parameters.get("sampleCount", 4)
    if not isinstance(count, int) or not 1 <= count <= 4:
        return f"Invalid sample count: {count!r}. It must be between 1 and 4."
    if parameters.get("aspectRatio", "1:1") not in _ASPECT_RATIOS:
        return f"Unsupported aspect ratio: {parameters['aspectRatio']!r}."
    negative = parameters.get("negativePrompt")
    if negative is not None and (not isinstance(negative, str) or not negative.strip()):
        return "Invalid negative prompt."
    if not isinstance(parameters.get("includeRaiReason", False), bool):
        return "Invalid value for includeRaiReason."
    mime_type = (parameters.get("outputOptions") or {}).get("mimeType", "image/png")
    if mime_type not in _MIME_TYPES:
        return f"Unsupported output mime type: {mime_type!r}."
    return None


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
