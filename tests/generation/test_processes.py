"""Several studio processes sharing PostgreSQL and Redis, with the real OpenAI
provider talking to a fake upstream over loopback: what a production
deployment behind a load balancer does when readers move, stop and die."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import psycopg
import pytest

from tests.fakeservers.openai_server import Behaviour, OpenAIFakeServer, default_tokens
from tests.support.event_streams import read_event_stream
from tests.support.poison import MARKER
from tests.support.poison import statements as poison_statements
from tests.support.services import postgres_url, redis_url
from tests.support.studio_process import StudioProcess, openai_deployment

pytestmark = pytest.mark.timeout(180)

TOKENS = default_tokens(60)


@pytest.fixture(scope="module")
def upstream():
    # 60 tokens at 20 a second: each answer streams for about three seconds.
    with OpenAIFakeServer(Behaviour(tokens=TOKENS, token_interval=0.05)) as server:
        yield server


@pytest.fixture(scope="module")
def deployment(upstream, tmp_path_factory):
    """Two web processes (and a spare to kill) on one database and one Redis."""
    with openai_deployment(
        upstream.url,
        tmp_path_factory.mktemp("processes"),
        postgres=postgres_url(),
        redis_address=redis_url(),
        # A process that dies is noticed within a few seconds here (30 s by default).
        STUDIO_LEASE_SECONDS="3",
        STUDIO_CHECKPOINT_SECONDS="0.2",
    ) as deployed:
        yield deployed


def create(process: StudioProcess, headers: dict) -> str:
    response = httpx.post(
        f"{process.url}/api/v1/generations",
        json={"template": "bench", "inputs": {"topic": "streams"}},
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def read_events(process, generation_id, headers, *, after=None, deltas=None, timeout=30):
    """(id, name, data) of the events on `process`, to `done` or `deltas` text events."""
    request_headers = dict(headers)
    if after is not None:
        request_headers["Last-Event-ID"] = str(after)

    def enough(events) -> bool:
        return deltas is not None and sum(e[1] == "delta" for e in events) >= deltas

    url = f"{process.url}/api/v1/generations/{generation_id}/events"
    return read_event_stream(url, request_headers, until=enough, timeout=timeout)


def text_of(events) -> str:
    return "".join(data["text"] for _, name, data in events if name == "delta")


def detail(process, generation_id, headers) -> dict:
    response = httpx.get(
        f"{process.url}/api/v1/generations/{generation_id}", headers=headers, timeout=10
    )
    assert response.status_code == 200
    return response.json()


def test_a_reader_moved_to_another_process_mid_stream_loses_nothing(deployment):
    processes, headers = deployment.processes, deployment.headers
    a, b = processes["a"], processes["b"]
    generation_id = create(a, headers)
    first = read_events(a, generation_id, headers, deltas=3)
    assert [name for _, name, _ in first] == ["delta"] * 3
    # The connection drops; the browser reconnects, through the balancer, to the other process.
    rest = read_events(b, generation_id, headers, after=first[-1][0])
    assert rest[-1][1] == "done"
    assert rest[-1][2]["status"] == "completed"
    ids = [event_id for event_id, _, _ in first + rest]
    assert ids == sorted(set(ids))  # in order, none twice
    stored = detail(b, generation_id, headers)
    assert text_of(first + rest) == stored["output"] == "".join(TOKENS)
    # A second tab on either process, from the start, sees the same answer.
    assert text_of(read_events(b, generation_id, headers)) == stored["output"]
    assert text_of(read_events(a, generation_id, headers)) == stored["output"]


def test_stop_sent_to_another_process_closes_the_upstream_within_a_second(deployment, upstream):
    processes, headers = deployment.processes, deployment.headers
    a, b = processes["a"], processes["b"]
    generation_id = create(a, headers)
    seen = read_events(b, generation_id, headers, deltas=2)
    disconnects_before = len(upstream.disconnects)
    asked = time.monotonic()
    response = httpx.post(
        f"{b.url}/api/v1/generations/{generation_id}/cancel", headers=headers, timeout=10
    )
    assert response.status_code == 202
    while len(upstream.disconnects) == disconnects_before:
        assert time.monotonic() - asked < 1, "the upstream request was still open after 1 s"
        time.sleep(0.01)
    rest = read_events(b, generation_id, headers, after=seen[-1][0])
    assert rest[-1][1] == "done"
    assert rest[-1][2]["status"] == "cancelled"
    stored = detail(a, generation_id, headers)
    assert stored["status"] == "cancelled"
    assert stored["output"] == text_of(seen + rest)
    assert 0 < len(stored["output"]) < len("".join(TOKENS))


def test_a_killed_process_generation_fails_with_its_text_kept(deployment):
    processes, headers = deployment.processes, deployment.headers
    doomed, b = processes["doomed"], processes["b"]
    generation_id = create(doomed, headers)
    seen = read_events(b, generation_id, headers, deltas=10)
    # Past a checkpoint: some of the text is in the database.
    deadline = time.monotonic() + 30
    while not detail(b, generation_id, headers)["output"]:
        assert time.monotonic() < deadline, "no checkpoint was saved"
        time.sleep(0.05)
    doomed.kill()
    killed = time.monotonic()
    # The reader on the surviving process is told, and the stream ends.
    rest = read_events(b, generation_id, headers, after=seen[-1][0], timeout=60)
    assert [name for _, name, _ in rest][-2:] == ["error", "done"]
    assert time.monotonic() - killed < 60
    stored = detail(b, generation_id, headers)
    assert stored["status"] == "failed"
    assert stored["error"]["code"] == "interrupted"
    assert stored["output"]
    assert text_of(seen + rest).startswith(stored["output"])


def test_another_persons_stream_is_not_found_on_any_process(deployment):
    processes, headers = deployment.processes, deployment.headers
    generation_id = create(processes["a"], headers)
    for process in (processes["a"], processes["b"]):
        response = httpx.get(
            f"{process.url}/api/v1/generations/{generation_id}/events",
            headers={"Authorization": "Bearer ais_not-a-token"},
            timeout=10,
        )
        assert response.status_code == 401
        response = httpx.get(
            f"{process.url}/api/v1/generations/{uuid.uuid4()}/events", headers=headers, timeout=10
        )
        assert response.status_code == 404


def test_open_streams_do_not_hold_a_thread_each(deployment):
    """Django gives every request a thread for its synchronous steps and would
    keep it for a stream's whole length; open streams let theirs go."""
    processes, headers = deployment.processes, deployment.headers
    b = processes["b"]
    ids = [create(b, headers) for _ in range(40)]
    streaming = threading.Barrier(41)

    def follow(generation_id: str) -> str:
        url = f"{b.url}/api/v1/generations/{generation_id}/events"
        waited = False
        with httpx.stream("GET", url, headers=headers, timeout=60) as response:
            for line in response.iter_lines():
                if line == "event: delta" and not waited:
                    waited = True
                    streaming.wait(timeout=60)  # and keep this stream open meanwhile
                if line == "event: done":
                    return line
        return ""

    with ThreadPoolExecutor(max_workers=40) as pool:
        futures = [pool.submit(follow, generation_id) for generation_id in ids]
        streaming.wait(timeout=60)  # every reader has text: 40 streams are open
        threads = psutil.Process(b.pid).num_threads()
        assert [future.result() for future in futures] == ["event: done"] * 40
    assert threads < 30


# A broken or hostile model service: a lone surrogate, an emoji's surrogate pair
# split across two chunks, NUL and other control characters.
HOSTILE_TOKENS = ["Dear ", "\ud800", "client \ud83d", "\ude00 ", "a\x00b\x07c", " end"]


def test_a_hostile_model_stream_is_cleaned_once_and_read_alike_on_every_process(
    deployment, upstream
):
    processes, headers = deployment.processes, deployment.headers
    a, b = processes["a"], processes["b"]
    upstream.enqueue(Behaviour(tokens=HOSTILE_TOKENS, token_interval=0.05))
    hostile = create(a, headers)
    healthy = create(a, headers)
    for process in (a, b):
        events = read_events(process, hostile, headers)
        assert events[-1][2]["status"] == "completed"
        assert text_of(events) == "Dear \ufffdclient \U0001f600 abc end"
    assert detail(b, hostile, headers)["output"] == "Dear \ufffdclient \U0001f600 abc end"
    events = read_events(b, healthy, headers)
    assert text_of(events) == detail(a, healthy, headers)["output"] == "".join(TOKENS)


def test_a_row_the_database_refuses_fails_alone_and_no_process_takes_the_others_for_dead(
    deployment, upstream
):
    """One process's checkpoint statement covers all its running generations; a
    row the database refuses must fail alone, and the process must keep renewing
    the others' leases, or another process would reap them as dead."""
    processes, headers = deployment.processes, deployment.headers
    a, b = processes["a"], processes["b"]
    create_trigger, drop_trigger = poison_statements("postgresql")
    with psycopg.connect(deployment.database_url, autocommit=True) as connection:
        for statement in create_trigger:
            connection.execute(statement)
        try:
            # 100 tokens at 20 a second: each answer outlives the 3 s lease.
            slow = Behaviour(tokens=default_tokens(100), token_interval=0.05)
            upstream.enqueue(Behaviour(tokens=[f"{MARKER} ", *slow.tokens], token_interval=0.05))
            poisoned = create(a, headers)
            read_events(a, poisoned, headers, deltas=1)  # its upstream request is the enqueued one
            upstream.enqueue(*[slow] * 4)
            healthy = [create(a, headers) for _ in range(3)] + [create(b, headers)]
            ends = {gid: read_events(b, gid, headers, timeout=60) for gid in [poisoned, *healthy]}
        finally:
            for statement in drop_trigger:
                connection.execute(statement)
    assert ends[poisoned][-1][2]["status"] == "failed"
    assert detail(a, poisoned, headers)["error"]["code"] == "unsavable_output"
    for generation_id in healthy:
        assert ends[generation_id][-1][2]["status"] == "completed"
        stored = detail(b, generation_id, headers)
        assert stored["status"] == "completed", stored["error"]
        assert stored["output"] == text_of(ends[generation_id]) == "".join(slow.tokens)
