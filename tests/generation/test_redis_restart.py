"""Redis restarted under running streams: every reader gets every event once,
and the studio says so once at WARNING, never with an error per retry."""

from __future__ import annotations

import threading

import httpx
import pytest

from tests.fakeservers.openai_server import Behaviour, OpenAIFakeServer, default_tokens
from tests.support.event_streams import read_event_stream
from tests.support.redis_server import RedisServer
from tests.support.services import postgres_url
from tests.support.studio_process import openai_deployment

pytestmark = pytest.mark.timeout(180)

# 80 tokens at 20 a second: four seconds of answer, with Redis away in the middle.
TOKENS = default_tokens(80)


def test_a_redis_restart_mid_stream_loses_no_event_and_logs_one_warning(tmp_path):
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    upstream = OpenAIFakeServer(Behaviour(tokens=TOKENS, token_interval=0.05)).start()
    try:
        with openai_deployment(
            upstream.url,
            tmp_path,
            postgres=postgres_url(),
            redis_address=redis_server.url,
            STUDIO_CHECKPOINT_SECONDS="0.2",
        ) as deployment:
            a, b = deployment.processes["a"], deployment.processes["b"]
            response = httpx.post(
                f"{a.url}/api/v1/generations",
                json={"template": "bench", "inputs": {"topic": "outages"}},
                headers=deployment.headers,
                timeout=10,
            )
            assert response.status_code == 201, response.text
            generation_id = response.json()["id"]
            url = f"{b.url}/api/v1/generations/{generation_id}/events"
            some_text = threading.Event()
            events = []

            def note(so_far) -> bool:
                if sum(name == "delta" for _, name, _ in so_far) >= 5:
                    some_text.set()
                return False

            reader = threading.Thread(
                target=lambda: events.extend(
                    read_event_stream(url, deployment.headers, until=note, timeout=90)
                )
            )
            reader.start()
            assert some_text.wait(30), "no text reached the reader on the other process"
            redis_server.stop()
            redis_server.start()
            reader.join(90)
            assert not reader.is_alive()
            detail = httpx.get(
                f"{a.url}/api/v1/generations/{generation_id}",
                headers=deployment.headers,
                timeout=10,
            ).json()
            logs = {name: process.log.read_text() for name, process in deployment.processes.items()}
    finally:
        upstream.stop()
        redis_server.stop()
    ids = [event_id for event_id, _, _ in events]
    assert ids == sorted(set(ids)), "an event came twice or out of order"
    assert events[-1][1] == "done"
    assert events[-1][2]["status"] == "completed"
    text = "".join(data["text"] for _, name, data in events if name == "delta")
    assert text == detail["output"] == "".join(TOKENS)
    for name, log in logs.items():
        assert " ERROR " not in log, f"process {name} logged an error:\n{log[-3000:]}"
    for name in ("a", "b"):
        warnings = [line for line in logs[name].splitlines() if "Redis is unreachable" in line]
        assert 1 <= len(warnings) <= 2, f"process {name}: {warnings}"
