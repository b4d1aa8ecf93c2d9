"""The studio as real server processes (daphne) on a database of their own,
for tests and benchmarks that need more than one process."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
from filelock import FileLock

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"

# A user, one small template and an API token (printed last).
SETUP_SCRIPT = """
from django.contrib.auth import get_user_model
from studio.services import api_token_create
from templates_catalog.models import Category, Template, TemplateField
user, _ = get_user_model().objects.get_or_create(username="bench")
category, _ = Category.objects.get_or_create(
    slug="bench", defaults={"name_en": "Bench", "name_ja": "Bench"})
template, _ = Template.objects.get_or_create(slug="bench", defaults=dict(
    category=category, status="published", title_en="Bench", title_ja="Bench",
    prompt_body_en="Write about {{ topic }}.",
    prompt_body_ja="{{ topic }}について書いてください。"))
TemplateField.objects.get_or_create(template=template, name="topic", defaults=dict(
    type="short_text", required=True, label_en="Topic", label_ja="Topic"))
print(api_token_create(user=user, name="bench")[1])
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def fresh_postgres_database(server_url: str, name: str) -> str:
    """Create (or recreate) database `name`; returns its URL."""
    with psycopg.connect(server_url + "/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url}/{name}"


def drop_postgres_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url + "/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def studio_environment(data_dir: Path, **overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL"} and not key.startswith("STUDIO_")
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "studio.settings",
        "DJANGO_DEBUG": "true",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "STUDIO_DATA_DIR": str(data_dir),
        "STUDIO_LOG_LEVEL": "WARNING",
        # Plans' limits are tested on their own (tests/generation/test_limits.py).
        "STUDIO_ENFORCE_PLANS": "false",
    }
    return env | overrides


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


def demo_environment(data_dir: Path, **overrides: str) -> dict[str, str]:
    """The environment of the demo as `make demo` runs it (a SQLite database
    in `data_dir`, migrated, with the demo data), and `overrides`."""
    demo_data(data_dir)
    return studio_environment(data_dir, **overrides)


def prepare(env: dict[str, str]) -> str:
    """Migrate, create the user and template; return an API token."""
    manage(env, "migrate", "--noinput", "-v0")
    return manage(env, "shell", "-c", SETUP_SCRIPT).strip().splitlines()[-1]


def wait_until_answering(url: str, process: subprocess.Popen, log: Path) -> None:
    """Wait for a server process to answer HTTP at `url` (any status will do)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError as exc:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{url} did not come up:\n{log.read_text()[-3000:]}") from exc
            time.sleep(0.2)


def stop_process(process: subprocess.Popen, *, timeout: float) -> None:
    """SIGTERM, and SIGKILL if it has not ended after `timeout` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()


class StudioProcess:
    """One `daphne studio.asgi:application` process."""

    def __init__(self, env: dict[str, str], log: Path, *, wait: bool = True) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", HOST, "-p", str(self.port)]
            + ["studio.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        if wait:
            self.wait_until_answering()

    def wait_until_answering(self) -> None:
        try:
            wait_until_answering(self.url + "/accounts/login/", self.process, self.log)
        except RuntimeError:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind, as when a machine dies."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        stop_process(self.process, timeout=10)


class WorkerProcess:
    """One `celery worker` process (one pool process, prefork, as in production)."""

    def __init__(self, env: dict[str, str], log: Path, name: str) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "studio.celery:app", "worker"]
            + ["--loglevel", "INFO", "--concurrency", "1", "--hostname", f"{name}@%h"]
            + ["--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while " ready." not in log.read_text():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"worker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)

    def pool_processes(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children()

    def kill(self) -> None:
        """SIGKILL the worker and its pool: the machine died."""
        for child in self.pool_processes():
            child.send_signal(signal.SIGKILL)
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        stop_process(self.process, timeout=20)


@dataclass(frozen=True)
class Deployment:
    processes: dict[str, StudioProcess]
    headers: dict[str, str]  # an API token's
    database_url: str


@contextlib.contextmanager
def openai_deployment(
    upstream_url: str, data_dir: Path, *, postgres: str, redis_address: str, **overrides: str
) -> Iterator[Deployment]:
    """Web processes `a`, `b` and `doomed` (a spare to kill) on a fresh database
    and one Redis, with the OpenAI provider pointed at `upstream_url`."""
    import redis

    name = f"studio_{data_dir.name}_{os.getpid()}".replace("-", "_")
    database_url, token = postgres_database(postgres, name)
    env = studio_environment(
        data_dir,
        DATABASE_URL=database_url,
        REDIS_URL=redis_address,
        STUDIO_LLM_PROVIDER="openai",
        OPENAI_BASE_URL=upstream_url + "/v1",
        OPENAI_API_KEY="test-key",
        STUDIO_OPENAI_MODEL="fake-model",
        **overrides,
    )
    # Started together: each spends its first seconds importing.
    processes = {
        process: StudioProcess(env, data_dir / f"{process}.log", wait=False)
        for process in ("a", "b", "doomed")
    }
    try:
        for process in processes.values():
            process.wait_until_answering()
        yield Deployment(processes, {"Authorization": f"Bearer {token}"}, database_url)
    finally:
        # Told together, so that their graceful ends overlap.
        for process in processes.values():
            if process.process.poll() is None:
                process.process.terminate()
        for process in processes.values():
            process.stop()
        drop_postgres_database(postgres, name)
        redis.Redis.from_url(redis_address).flushdb()


# --- Prepared once per test run ----------------------------------------------
# What the process tests start from, prepared once per test run and shared
# by the pytest-xdist workers: a migrated PostgreSQL database (cloned with
# CREATE DATABASE … TEMPLATE, a fraction of a second) and a demo data
# directory as `make demo` leaves it (migrated SQLite with the demo loaded,
# copied file by file). The first worker to need one builds it under a file
# lock; the others wait for it and copy.
#
# The run's shared directory is made by the controlling pytest process
# (tests/conftest.py) and named in STUDIO_TEST_RUN_DIR, which the workers
# inherit; the controller removes it, and the template database, at the end.

RUN_DIR_VARIABLE = "STUDIO_TEST_RUN_DIR"


def run_directory() -> Path:
    """This run's shared directory (one of its own outside a test run)."""
    if RUN_DIR_VARIABLE not in os.environ:
        os.environ[RUN_DIR_VARIABLE] = tempfile.mkdtemp(prefix="studio-tests-")
    return Path(os.environ[RUN_DIR_VARIABLE])


def template_database_name(run_dir: Path) -> str:
    digest = hashlib.sha256(str(run_dir).encode()).hexdigest()[:10]
    return f"studio_template_{digest}"


def _connect(server_url: str) -> psycopg.Connection:
    return psycopg.connect(server_url + "/postgres", autocommit=True)


def prepared_postgres_template(server_url: str) -> tuple[str, str]:
    """This run's migrated database with the bench user, its template and an
    API token, built by the first to ask for it: (its name, the token)."""
    run_dir = run_directory()
    template = template_database_name(run_dir)
    token_file = run_dir / f"{template}.token"
    with FileLock(run_dir / f"{template}.lock"):
        if not token_file.exists():
            with _connect(server_url) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
                connection.execute(f'CREATE DATABASE "{template}"')
            env = studio_environment(run_dir, DATABASE_URL=f"{server_url}/{template}")
            token_file.write_text(prepare(env))
    return template, token_file.read_text()


def postgres_database(server_url: str, name: str) -> tuple[str, str]:
    """Database `name` (recreated) migrated, with the bench user, its one
    template and an API token: (its URL, the token)."""
    template, token = prepared_postgres_template(server_url)
    with FileLock(run_directory() / f"{template}.lock"), _connect(server_url) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return f"{server_url}/{name}", token


def drop_template_database(server_url: str, run_dir: Path) -> None:
    with _connect(server_url) as connection:
        connection.execute(
            f'DROP DATABASE IF EXISTS "{template_database_name(run_dir)}" WITH (FORCE)'
        )


def prepared_demo_data() -> Path:
    """This run's demo data directory, built by the first to ask for it."""
    run_dir = run_directory()
    prepared = run_dir / "demo"
    with FileLock(run_dir / "demo.lock"):
        if not (prepared / "ready").exists():
            shutil.rmtree(prepared, ignore_errors=True)
            prepared.mkdir()
            env = studio_environment(prepared)
            manage(env, "migrate", "--noinput", "-v0")
            manage(env, "load_demo", "-v0")
            (prepared / "ready").touch()
    return prepared


def demo_data(data_dir: Path) -> None:
    """Fill `data_dir` with the demo's data directory: a SQLite database
    migrated and loaded by `load_demo`, exactly as `make demo` leaves it."""
    prepared = prepared_demo_data()
    shutil.copytree(prepared, data_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns("ready"))


def start_preparing(postgres: str | None) -> list[subprocess.Popen]:
    """Begin building what the process tests start from, in processes of their
    own, while the test workers start and collect (tests/conftest.py)."""
    script = "from tests.support import studio_process as s; "
    jobs = [script + "s.prepared_demo_data()"]
    if postgres:
        jobs.append(script + f"s.prepared_postgres_template({postgres!r})")
    return [
        subprocess.Popen(
            [sys.executable, "-c", job],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for job in jobs
    ]
