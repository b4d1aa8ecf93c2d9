"""The line for the model across processes: web processes sharing PostgreSQL and
Redis, the real OpenAI provider, and a fake upstream that counts how many
requests it serves at once."""

from __future__ import annotations

import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.fakeservers.openai_server import Behaviour, OpenAIFakeServer, default_tokens
from tests.support.event_streams import read_event_stream
from tests.support.services import postgres_url, redis_url
from tests.support.studio_process import StudioProcess, openai_deployment
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(240)

CAPACITY = 3


@pytest.fixture(scope="module")
def upstream():
    # 10 tokens 0.05 s apart: each answer holds its slot for about half a second.
    with OpenAIFakeServer(Behaviour(tokens=default_tokens(10), token_interval=0.05)) as server:
        yield server


@pytest.fixture(scope="module")
def deployment(upstream, tmp_path_factory):
    """Two web processes (and a spare to kill) on one database and one Redis."""
    with openai_deployment(
        upstream.url,
        tmp_path_factory.mktemp("slots"),
        postgres=postgres_url(),
        redis_address=redis_url(),
        STUDIO_MAX_CONCURRENT_GENERATIONS=str(CAPACITY),
        STUDIO_LEASE_SECONDS="3",
        # The fifty-clients test holds the model's answers until everyone is in line.
        STUDIO_PROVIDER_READ_TIMEOUT="300",
    ) as deployed:
        yield deployed


def create(process: StudioProcess, headers: dict, topic: str = "lines") -> str:
    response = httpx.post(
        f"{process.url}/api/v1/generations",
        json={"template": "bench", "inputs": {"topic": topic}},
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def events_of(
    process: StudioProcess,
    generation_id: str,
    headers: dict,
    arrived: threading.Event | None = None,
):
    """The generation's events to `done`; `arrived` is set at the first one."""
    url = f"{process.url}/api/v1/generations/{generation_id}/events"

    def first(events) -> bool:
        if arrived is not None:
            arrived.set()
        return False

    return read_event_stream(url, headers, until=first, timeout=120)


def test_fifty_clients_on_two_processes_never_exceed_the_cap(deployment, upstream):
    processes, headers = deployment.processes, deployment.headers
    web = [processes["a"], processes["b"]]
    upstream.max_in_flight = 0
    served_before = upstream.completed
    requests_before = len(upstream.requests)
    # The model answers nobody until all fifty have pressed Generate, so the
    # line forms however slowly a loaded machine takes the presses.
    gate = threading.Event()
    upstream.enqueue(*[Behaviour(tokens=default_tokens(10), token_interval=0.05, gate=gate)] * 50)
    # Fifty people press Generate one after another, on either process; the
    # first CAPACITY are sent to the model at once, the others each take their
    # place in line (their first event) before the next one presses.
    ids = []
    with ThreadPoolExecutor(max_workers=50) as pool:
        streams = []
        for n in range(50):
            process = web[n % 2]
            ids.append(create(process, headers, topic=f"lines {n}"))
            arrived = threading.Event()
            streams.append(pool.submit(events_of, process, ids[-1], headers, arrived))
            if n < CAPACITY:
                wait_for(lambda n=n: len(upstream.requests) - requests_before > n, timeout=60)
            else:
                assert arrived.wait(60), "a generation was told nothing"
        gate.set()
        streams = [stream.result() for stream in streams]
    assert upstream.max_in_flight == CAPACITY
    assert upstream.completed - served_before == 50
    for events in streams:
        assert events[-1][1] == "done"
        assert events[-1][2]["status"] == "completed"
    places = [
        [data["position"] for _, name, data in events if name == "queued"] for events in streams
    ]
    assert sum(1 for told in places if told) >= 50 - CAPACITY  # everyone beyond the slots waited
    for told in places:
        assert told == sorted(told, reverse=True)  # a place only ever goes down
        assert all(position >= 1 for position in told)
    # First come, first served: in the order the model was asked, nobody is
    # ahead of more than CAPACITY - 1 people who came before them (a slot that
    # frees goes to one of the first CAPACITY in line, whoever asks first).
    asked = [
        int(re.search(r"lines (\d+)", json.dumps(request.body)).group(1))
        for request in upstream.requests[requests_before:]
    ]
    assert sorted(asked) == list(range(50))
    for place, n in enumerate(asked):
        overtaken = sum(1 for earlier in asked[place + 1 :] if earlier < n)
        assert overtaken <= CAPACITY - 1, (n, asked)


def test_a_killed_processs_slots_come_back_after_its_lease(deployment, upstream):
    processes, headers = deployment.processes, deployment.headers
    doomed, a = processes["doomed"], processes["a"]
    # Three long answers on the doomed process take every slot.
    upstream.enqueue(*[Behaviour(tokens=default_tokens(400), token_interval=0.05)] * CAPACITY)
    held = [create(doomed, headers) for _ in range(CAPACITY)]
    for generation_id in held:
        read_event_stream(
            f"{a.url}/api/v1/generations/{generation_id}/events",
            headers,
            until=lambda events: any(name == "delta" for _, name, _ in events),
            timeout=30,
        )
    doomed.kill()
    killed = time.monotonic()
    waiting = create(a, headers)
    events = events_of(a, waiting, headers)
    started = time.monotonic() - killed
    assert [data["position"] for _, name, data in events if name == "queued"][:1] == [1]
    assert events[-1][2]["status"] == "completed"
    # The dead answers would have held their slots for 20 s; their leases lapse in 3.
    assert started < 15
