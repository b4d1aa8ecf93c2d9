"""The comparison for bench/streaming.py: a minimal FastAPI proxy to the same
upstream, shaped like the StreamingResponse example in seed 000 (a generator
yielding `data: <text>` frames with the same headers).

It is the seed's approach at its best: the async OpenAI client and an async
generator (the seed's synchronous generator would run on a 40-thread pool and
could not hold 1,000 streams at all). It has no database, no authentication,
no event log and no resume: what is left is the cost of proxying itself.

    uvicorn bench.fastapi_proxy:app --port 8001   (OPENAI_BASE_URL pointing at the upstream)
"""

from __future__ import annotations

import os

import httpx
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from openai import AsyncOpenAI

app = FastAPI()
client = AsyncOpenAI(
    api_key=os.environ.get("OPENAI_API_KEY", "bench"),
    max_retries=0,
    timeout=httpx.Timeout(60, connect=5),
    http_client=httpx.AsyncClient(limits=httpx.Limits(max_connections=None)),
)
MODEL = os.environ.get("STUDIO_OPENAI_MODEL", "bench-model")


async def generate_text_stream(prompt: str):
    try:
        stream = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": prompt}], stream=True
        )
        async with stream:
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield f"data: {chunk.choices[0].delta.content}\n\n"
        yield "event: done\ndata: {}\n\n"
    except Exception as exc:
        yield f"data: error: {exc}\n\n"


@app.get("/generate")
async def generate_text(prompt: str = "bench"):
    return StreamingResponse(
        generate_text_stream(prompt),
        media_type="text/event-stream",
        headers={
            "Cache-Control": "no-cache, no-transform",
            "X-Accel-Buffering": "no",
        },
    )
