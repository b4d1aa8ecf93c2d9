"""Lighthouse's mobile scores for the pages a person meets first.

    .venv/bin/python -m bench.ui [--runs 1]      (or `make bench-ui`)

Serves the studio as `make demo` does (demo mode, SQLite, the shipped
catalogue) in a throwaway folder, then runs Lighthouse (npm, bench/ui/,
driving Debian's Chromium) on home, the catalogue and a template page — the
template page both as a visitor and logged in, in Japanese. Prints a table
and one JSON document; with --runs N each score is the median of N runs.
Targets: performance, accessibility and best practices ≥ 95.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.support.studio_process import free_port, manage, studio_environment

ROOT = Path(__file__).resolve().parents[1]
LIGHTHOUSE = ROOT / "bench" / "ui" / "node_modules" / ".bin" / "lighthouse"
CHROMIUM = "/usr/bin/chromium"
CATEGORIES = ("performance", "accessibility", "best-practices")
PAGES = [
    ("home", "/", False),
    ("catalogue", "/templates/", False),
    ("template (visitor)", "/t/apology-email-to-client/", False),
    ("template (logged in)", "/t/apology-email-to-client/", True),
]

SESSION = """
from importlib import import_module
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
user = get_user_model().objects.get(username="demo")
session = import_module(settings.SESSION_ENGINE).SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(session.session_key)
"""


def wait_until_up(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def lighthouse(url: str, cookie: str | None, out: Path, attempts: int = 3) -> dict[str, float]:
    """One Lighthouse run's scores; a run that fails to record its trace
    (Lighthouse's own NO_NAVSTART and the like) is tried again."""
    for attempt in range(attempts):
        try:
            return lighthouse_once(url, cookie, out)
        except RuntimeError as error:
            if attempt == attempts - 1:
                sys.exit(str(error))
            print(f"(again: {str(error).splitlines()[1]})", file=sys.stderr)
    raise AssertionError("unreachable")


def lighthouse_once(url: str, cookie: str | None, out: Path) -> dict[str, float]:
    headers = {"Accept-Language": "ja"}
    if cookie:
        headers["Cookie"] = f"sessionid={cookie}"
    run = subprocess.run(
        [
            str(LIGHTHOUSE),
            url,
            "--quiet",
            "--form-factor=mobile",
            f"--only-categories={','.join(CATEGORIES)}",
            "--chrome-flags=--headless=new --no-sandbox --disable-gpu",
            f"--extra-headers={json.dumps(headers)}",
            "--output=json",
            f"--output-path={out}",
        ],
        env=os.environ | {"CHROME_PATH": CHROMIUM},
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        raise RuntimeError(f"Lighthouse failed on {url}:\n{run.stderr[-3000:].strip()}")
    report = json.loads(out.read_text())
    return {name: round(report["categories"][name]["score"] * 100) for name in CATEGORIES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    options = parser.parse_args()
    if not LIGHTHOUSE.exists():
        sys.exit("Lighthouse is not installed: run `make bench-ui` (it runs npm ci in bench/ui).")
    with tempfile.TemporaryDirectory(prefix="studio-bench-ui-") as work:
        data_dir = Path(work)
        env = studio_environment(data_dir, STUDIO_DEMO="true", DJANGO_DEBUG="false")
        env.pop("STUDIO_ENFORCE_PLANS")
        manage(env, "migrate", "--noinput", "-v0")
        manage(env, "load_demo", "-v0")
        cookie = manage(env, "shell", "-c", SESSION).strip().splitlines()[-1]
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
            + ["studio.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(base + "/")
            # The logged-in run must really be logged in: the form is there.
            request = urllib.request.Request(
                base + PAGES[-1][1], headers={"Cookie": f"sessionid={cookie}"}
            )
            with urllib.request.urlopen(request, timeout=10) as page:
                if b"generate-form" not in page.read():
                    sys.exit("The session cookie did not log the demo user in.")
            results = {}
            for name, path, logged_in in PAGES:
                runs = [
                    lighthouse(base + path, cookie if logged_in else None, data_dir / "lh.json")
                    for _ in range(options.runs)
                ]
                results[name] = {
                    category: statistics.median(run[category] for run in runs)
                    for category in CATEGORIES
                }
        finally:
            server.terminate()
            server.wait(10)
    print(f"{'page':<24}" + "".join(f"{c:>16}" for c in CATEGORIES))
    for name, scores in results.items():
        print(f"{name:<24}" + "".join(f"{scores[c]:>16g}" for c in CATEGORIES))
    print(json.dumps({"lighthouse_mobile": results, "runs": options.runs}, ensure_ascii=False))


if __name__ == "__main__":
    main()
