"""The JSON bodies of `done` and `error` events, built from a generation row."""

from __future__ import annotations

from typing import Any


def usage_payload(generation) -> dict[str, int]:
    return {"input_tokens": generation.input_tokens, "output_tokens": generation.output_tokens}


def done_payload(generation) -> dict[str, Any]:
    return {
        "status": generation.status,
        "finish_reason": generation.finish_reason,
        "usage": usage_payload(generation),
    }


def error_payload(generation) -> dict[str, Any]:
    return {"code": generation.error_code, "message": generation.error_message}
