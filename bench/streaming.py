"""Streaming benchmark: the studio against the same fake upstream called
directly, and against a minimal FastAPI proxy (bench/fastapi_proxy.py).

    .venv/bin/python -m bench.streaming [--streams 1000] [--tokens 100] [--rate 50] [--redis]

(or `make bench`). Prints one JSON document:

- `ttft`: time to first token through the whole studio and straight from the
  upstream, at 1 and at 100 concurrent streams. `studio_ms` starts and reads a
  generation in one request (POST /api/v1/generations with `Accept:
  text/event-stream`); `studio_two_requests_ms` POSTs for the JSON, then GETs
  its /events. `*_added_ms` is each minus `direct_ms`.
- `studio` and `fastapi`: `streams` concurrent streams of `tokens` tokens at
  `rate` tokens/s through one studio process (daphne) and through the proxy
  (uvicorn): completion time per stream, gaps between text events, the server
  process's CPU seconds per stream and its memory growth per open stream.
- `studio_page`: the same through the page's own stream (the HTML a person's
  browser reads: POST /api/v1/generations, then GET /generations/<id>/stream/
  with a session), and `page_cpu_over_api`: its CPU per stream over the API's.
- `page_encoding`: the CPU milliseconds one stream's encoding takes on its
  own (in this process, every delta an event of its own: no coalescing):
  `json` (the API's), `escaped_text` (the page's stream as it was, text
  escaped as it came) and `rendered_html` (the page's stream now: Markdown
  rendered as it arrives), and `rendered_over_escaped`.
- `ratio`: studio completion p50/p99 over the proxy's.

The upstream answers in Markdown (headings, lists, a table, a quote, code), so
that the page's stream renders what a model really sends.

Everything runs on this machine: the upstream, the servers under test and the
client each in a process of their own. The studio uses PostgreSQL when it is
reachable (a throwaway database, `studio_bench` unless `STUDIO_BENCH_DATABASE`
says otherwise), SQLite otherwise; with
`--redis` it also publishes every event to Redis, as it does with several
processes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from bench.sse_client import StreamResult, read_events, request
from tests.fakeservers.openai_server import markdown_tokens
from tests.support.services import reachable
from tests.support.studio_process import (
    ROOT,
    StudioProcess,
    free_port,
    fresh_postgres_database,
    manage,
    prepare,
    studio_environment,
    wait_until_answering,
)

HOST = "127.0.0.1"
POSTGRES = os.environ.get("STUDIO_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("STUDIO_BENCH_REDIS", "redis://127.0.0.1:6379/14")
DATABASE = os.environ.get("STUDIO_BENCH_DATABASE", "studio_bench")

# A signed-in session of the bench user (tests.support.studio_process makes the
# user), for the page's stream; prints the session cookie's name and value.
SESSION_SCRIPT = """
from importlib import import_module
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth import get_user_model
user = get_user_model().objects.get(username="bench")
session = import_module(settings.SESSION_ENGINE).SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.save()
print(f"{settings.SESSION_COOKIE_NAME}={session.session_key}")
"""


class Servers:
    """The upstream, the studio and the proxy, each its own process."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.processes: list[subprocess.Popen] = []

    def start(self, command: list[str], env: dict, name: str) -> subprocess.Popen:
        log = self.work / f"{name}.log"
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
        )
        self.processes.append(process)
        return process

    def upstream(self, tokens: int, rate: float) -> int:
        port = free_port()
        command = [sys.executable, "-m", "tests.fakeservers.openai_server", "--port", str(port)]
        command += ["--tokens", str(tokens), "--rate", str(rate), "--markdown"]
        process = self.start(command, dict(os.environ), f"upstream-{port}")
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
                return port
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("the fake upstream did not start")
            time.sleep(0.1)

    def studio_env(self, upstream_port: int) -> tuple[dict, str]:
        env = studio_environment(
            self.work,
            DJANGO_DEBUG="false",
            DJANGO_SECRET_KEY="bench-" + "x" * 50,
            DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
            STUDIO_LLM_PROVIDER="openai",
            OPENAI_BASE_URL=f"http://{HOST}:{upstream_port}/v1",
            OPENAI_API_KEY="bench",
            STUDIO_OPENAI_MODEL="bench-model",
        )
        # The line for the model opened wide: this measures streaming, not waiting.
        env["STUDIO_MAX_CONCURRENT_GENERATIONS"] = str(self.args.streams * 2)
        env["STUDIO_MAX_QUEUED_GENERATIONS"] = str(self.args.streams * 2)
        database = "sqlite"
        if reachable(POSTGRES, 5432):
            env["DATABASE_URL"] = fresh_postgres_database(POSTGRES, DATABASE)
            database = "postgresql"
        if self.args.redis:
            env["REDIS_URL"] = REDIS
        return env, database

    def studio(self, env: dict) -> tuple[int, int, str, str]:
        token = prepare(env)
        session = manage(env, "shell", "-c", SESSION_SCRIPT).strip().splitlines()[-1]
        manage(env, "collectstatic", "--noinput", "-v0")
        studio = StudioProcess(env, self.work / "studio.log")
        self.processes.append(studio.process)
        return studio.port, studio.pid, token, session

    def proxy(self, upstream_port: int) -> tuple[int, int]:
        port = free_port()
        env = dict(os.environ) | {
            "OPENAI_BASE_URL": f"http://{HOST}:{upstream_port}/v1",
            "OPENAI_API_KEY": "bench",
        }
        command = [sys.executable, "-m", "uvicorn", "bench.fastapi_proxy:app"]
        command += ["--host", HOST, "--port", str(port), "--log-level", "warning"]
        process = self.start(command, env, "proxy")
        wait_until_answering(f"http://{HOST}:{port}/docs", process, self.work / "proxy.log")
        return port, process.pid

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def percentiles(values: list[float], scale: float = 1000.0) -> dict[str, float]:
    if not values:
        return {"p50": None, "p99": None, "n": 0}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "p50": round(statistics.median(ordered) * scale, 2),
        "p99": round(p99 * scale, 2),
        "n": len(ordered),
    }


def openai_text(name: str, data: str) -> str:
    if data == "[DONE]":
        return ""
    chunk = json.loads(data)
    return "".join((choice["delta"].get("content") or "") for choice in chunk.get("choices", []))


def studio_text(name: str, data: str) -> str:
    return json.loads(data).get("text", "") if name == "delta" else ""


def proxy_text(name: str, data: str) -> str:
    return data if name == "message" else ""


def page_html(name: str, data: str) -> str:
    """The page's stream carries HTML: an event with some counts as text."""
    return data if name == "delta" else ""


class Studio:
    def __init__(self, port: int, token: str, session_cookie: str) -> None:
        self.port = port
        self.headers = {"Authorization": f"Bearer {token}"}
        self.cookie = {"Cookie": session_cookie}
        self.body = {"template": "bench", "inputs": {"topic": "streaming"}}

    async def stream(self, *, stop_at_first: bool = False) -> StreamResult:
        """Start a generation and read its events in one request (`Accept:
        text/event-stream` on the POST)."""
        result = StreamResult(started=time.perf_counter())
        return await read_events(
            HOST,
            self.port,
            "/api/v1/generations",
            result,
            method="POST",
            headers={**self.headers, "Accept": "text/event-stream"},
            json_body=self.body,
            text_of=studio_text,
            stop_at_first=stop_at_first,
            expect_status=201,
        )

    async def stream_in_two_requests(self, *, stop_at_first: bool = False) -> StreamResult:
        """POST /api/v1/generations for its JSON, then GET its /events."""
        result = StreamResult(started=time.perf_counter())
        if (generation_id := await self._create(result)) is None:
            return result
        path = f"/api/v1/generations/{generation_id}/events"
        return await read_events(
            HOST,
            self.port,
            path,
            result,
            headers=self.headers,
            text_of=studio_text,
            stop_at_first=stop_at_first,
        )

    async def page_stream(self) -> StreamResult:
        """POST /api/v1/generations for its JSON, then read it as the page does:
        its own stream, with a session."""
        result = StreamResult(started=time.perf_counter())
        if (generation_id := await self._create(result)) is None:
            return result
        path = f"/generations/{generation_id}/stream/"
        return await read_events(
            HOST, self.port, path, result, headers=self.cookie, text_of=page_html
        )

    async def _create(self, result: StreamResult) -> str | None:
        """Start a generation; its id, or None (and the error in `result`)."""
        created = await request(
            HOST,
            self.port,
            "POST",
            "/api/v1/generations",
            headers=self.headers,
            json_body=self.body,
        )
        if created.status != 201:
            result.error = f"create: HTTP {created.status} {created.body[:200]!r}"
            return None
        return json.loads(created.body)["id"]


async def direct_stream(port: int, *, stop_at_first: bool = False) -> StreamResult:
    result = StreamResult(started=time.perf_counter())
    body = {
        "model": "bench-model",
        "messages": [{"role": "user", "content": "Write about streaming."}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    return await read_events(
        HOST,
        port,
        "/v1/chat/completions",
        result,
        method="POST",
        headers={"Authorization": "Bearer bench"},
        json_body=body,
        text_of=openai_text,
        stop_at_first=stop_at_first,
    )


async def proxy_stream(port: int) -> StreamResult:
    result = StreamResult(started=time.perf_counter())
    return await read_events(HOST, port, "/generate?prompt=streaming", result, text_of=proxy_text)


async def ttft(make_stream, concurrency: int, rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        results = await asyncio.gather(*(make_stream() for _ in range(concurrency)))
        samples += [r.first_delta - r.started for r in results if r.first_delta]
        for failed in (r for r in results if r.error or not r.first_delta):
            print("ttft: a stream failed:", failed.error or "no text", file=sys.stderr)
        await asyncio.sleep(0.3)
    return samples


class ProcessWatch:
    """CPU seconds and peak memory of a server process while a run lasts."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak_rss = 0
        self._stop = threading.Event()

    def __enter__(self) -> ProcessWatch:
        self.base_rss = self.process.memory_info().rss
        times = self.process.cpu_times()
        self.base_cpu = times.user + times.system
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_rss = max(self.peak_rss, self.process.memory_info().rss)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        times = self.process.cpu_times()
        self.cpu = times.user + times.system - self.base_cpu


async def load(make_stream, streams: int, pid: int) -> dict:
    with ProcessWatch(pid) as watch:
        started = time.perf_counter()
        results = await asyncio.gather(*(make_stream() for _ in range(streams)))
        wall = time.perf_counter() - started
    ok = [r for r in results if r.finished and not r.error]
    gaps = [b - a for r in ok for a, b in zip(r.arrivals, r.arrivals[1:], strict=False)]
    errors = sorted({r.error for r in results if r.error})
    return {
        "streams": streams,
        "completed": len(ok),
        "errors": errors[:5],
        "wall_s": round(wall, 2),
        "completion_ms": percentiles([r.finished - r.started for r in ok]),
        "first_text_ms": percentiles([r.first_delta - r.started for r in ok if r.first_delta]),
        "event_gap_ms": percentiles(gaps),
        "text_events_per_stream": round(statistics.mean(len(r.arrivals) for r in ok), 1)
        if ok
        else 0,
        "cpu_ms_per_stream": round(watch.cpu / streams * 1000, 2),
        "rss_base_mb": round(watch.base_rss / 2**20, 1),
        "rss_peak_mb": round(watch.peak_rss / 2**20, 1),
        "rss_kb_per_open_stream": round((watch.peak_rss - watch.base_rss) / streams / 1024, 1),
    }


async def encoding_report(tokens: int, work: Path, repeats: int = 30) -> dict:
    """CPU per stream of each encoding of the same answer's deltas (two tokens
    an event, 40 ms apart, as the runner coalesces them at 50 tokens/s)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    os.environ.setdefault("STUDIO_DATA_DIR", str(work))
    import django

    django.setup()
    from django.utils.html import escape

    from generation.events.log import Event, EventName
    from generation.reading.streams import PageStream, json_frames
    from studio.sse import sse_event

    pieces = markdown_tokens(tokens)
    events, last_id = [], 0
    for start in range(0, len(pieces), 2):
        text = "".join(pieces[start : start + 2])
        last_id += len(text)
        events.append(Event(last_id, EventName.DELTA, {"text": text}))

    async def escaped_text(batch: list[Event]) -> bytes:
        return b"".join(sse_event(e.id, e.name, escape(e.data["text"])) for e in batch)

    now = 0.0

    def page_stream() -> PageStream:
        encode = PageStream("bench", None)
        encode.clock = lambda: now  # the events' own time, not the benchmark's
        return encode

    encoders = {
        "json": lambda: json_frames,
        "escaped_text": lambda: escaped_text,
        "rendered_html": page_stream,
    }
    report = {}
    for name, make in encoders.items():
        started = time.process_time()
        for _ in range(repeats):
            encode = make()
            for event in events:
                now += 0.04  # 50 tokens/s, two an event
                await encode([event])
        report[f"{name}_ms"] = round((time.process_time() - started) / repeats * 1000, 3)
    report["rendered_over_escaped"] = round(
        report["rendered_html_ms"] / report["escaped_text_ms"], 1
    )
    report["events_per_stream"] = len(events)
    return report


async def run(args: argparse.Namespace, servers: Servers) -> dict:
    upstream = servers.upstream(args.tokens, args.rate)
    env, database = servers.studio_env(upstream)
    studio_port, studio_pid, token, session_cookie = servers.studio(env)
    proxy_port, proxy_pid = servers.proxy(upstream)
    studio = Studio(studio_port, token, session_cookie)
    report: dict = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "settings": {
            "streams": args.streams,
            "tokens": args.tokens,
            "rate": args.rate,
            "database": database,
            "redis": bool(args.redis),
        },
        "page_encoding": await encoding_report(args.tokens, servers.work),
    }

    # Warm both servers up (imports, connections, first queries).
    await asyncio.gather(*(studio.stream() for _ in range(5)))
    await asyncio.gather(*(studio.page_stream() for _ in range(5)))
    await asyncio.gather(*(proxy_stream(proxy_port) for _ in range(5)))

    if not args.no_ttft:
        report["ttft"] = await ttft_report(args, studio, upstream)

    report["studio"] = await load(studio.stream, args.streams, studio_pid)
    await asyncio.sleep(2)
    report["studio_page"] = await load(studio.page_stream, args.streams, studio_pid)
    report["page_cpu_over_api"] = round(
        report["studio_page"]["cpu_ms_per_stream"] / report["studio"]["cpu_ms_per_stream"], 3
    )
    await asyncio.sleep(2)
    report["fastapi"] = await load(lambda: proxy_stream(proxy_port), args.streams, proxy_pid)
    report["ratio_studio_over_fastapi"] = {
        key: round(
            report["studio"]["completion_ms"][key] / report["fastapi"]["completion_ms"][key], 3
        )
        for key in ("p50", "p99")
        if report["studio"]["completion_ms"][key] and report["fastapi"]["completion_ms"][key]
    }
    return report


async def ttft_report(args: argparse.Namespace, studio: Studio, upstream: int) -> dict:
    report = {}
    flows = {
        "studio_ms": lambda: studio.stream(stop_at_first=True),
        "studio_two_requests_ms": lambda: studio.stream_in_two_requests(stop_at_first=True),
        "direct_ms": lambda: direct_stream(upstream, stop_at_first=True),
    }
    for concurrency, rounds in ((1, args.ttft_samples), (100, 2)):
        figures = {}
        for name, flow in flows.items():
            figures[name] = percentiles(await ttft(flow, concurrency, rounds))
            await asyncio.sleep(args.tokens / args.rate + 1)  # let the runs finish
        direct = figures["direct_ms"]
        for name in ("studio_ms", "studio_two_requests_ms"):
            added = name.replace("_ms", "_added_ms")
            figures[added] = {
                key: round(figures[name][key] - direct[key], 2) for key in ("p50", "p99")
            }
        report[f"concurrency_{concurrency}"] = figures
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--rate", type=float, default=50.0, help="upstream tokens a second")
    parser.add_argument("--ttft-samples", type=int, default=50)
    parser.add_argument("--redis", action="store_true", help="also publish events to Redis")
    parser.add_argument("--no-ttft", action="store_true", help="measure only the load runs")
    parser.add_argument("--work-dir", help="where the servers' data and logs go (default: /tmp)")
    args = parser.parse_args(argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory(prefix="studio-bench-", dir=args.work_dir) as work:
        servers = Servers(args, Path(work))
        try:
            report = asyncio.run(run(args, servers))
        except BaseException:
            for log in sorted(Path(work).glob("*.log")):
                print(f"--- {log.name}\n{log.read_text()[-4000:]}", file=sys.stderr)
            raise
        finally:
            servers.stop()
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
