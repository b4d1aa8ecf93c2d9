"""Image generations end to end through real processes: a daphne web process and
Celery workers on PostgreSQL with Redis as the broker, the offline demo model
drawing. What a production deployment does when jobs are queued, watched,
redelivered and when a worker dies mid-job."""

from __future__ import annotations

import os
import signal

import httpx
import pytest
import redis
from PIL import Image

from tests.support.event_streams import read_event_stream
from tests.support.services import postgres_url, redis_url
from tests.support.studio_process import (
    StudioProcess,
    WorkerProcess,
    drop_postgres_database,
    manage,
    postgres_database,
    studio_environment,
)

pytestmark = pytest.mark.timeout(240)

IMAGE_TEMPLATE_SCRIPT = """
from templates_catalog.models import Category, Template, TemplateField
category = Category.objects.get(slug="bench")
template, _ = Template.objects.get_or_create(slug="bench-image", defaults=dict(
    category=category, kind="image", status="published", title_en="Poster", title_ja="Poster",
    prompt_body_en="A poster of {{ subject }}.", prompt_body_ja="{{ subject }}のポスター"))
TemplateField.objects.get_or_create(template=template, name="subject", defaults=dict(
    type="short_text", required=True, label_en="Subject", label_ja="Subject", order=1))
TemplateField.objects.get_or_create(template=template, name="count", defaults=dict(
    type="number", required=True, label_en="Count", label_ja="Count", min_value=1, max_value=4,
    default="1", order=2))
"""


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    server_url = postgres_url()
    redis_address = redis_url()
    redis.Redis.from_url(redis_address).flushdb()
    name = f"studio_images_{os.getpid()}"
    data_dir = tmp_path_factory.mktemp("images")
    database_url, token = postgres_database(server_url, name)
    env = studio_environment(
        data_dir,
        DATABASE_URL=database_url,
        REDIS_URL=redis_address,
        STUDIO_MEDIA_ROOT=str(data_dir / "media"),
        STUDIO_IMAGE_PROVIDER="demo",
        # Long enough to act mid-drawing: about 3 s for each image.
        STUDIO_DEMO_IMAGE_SECONDS="3",
        # A dead worker's job is noticed within seconds here (minutes by default).
        # The lease is also the margin a second worker has to start and take the
        # job over before it is given up for lost: seconds, on a loaded machine.
        STUDIO_LEASE_SECONDS="6",
        STUDIO_IMAGE_VISIBILITY_TIMEOUT="6",
        STUDIO_IMAGE_TASK_TIME_LIMIT="30",
        STUDIO_IMAGE_TASK_SOFT_TIME_LIMIT="25",
    )
    manage(env, "shell", "-c", IMAGE_TEMPLATE_SCRIPT)
    web = StudioProcess(env, data_dir / "web.log", wait=False)
    workers = {"first": WorkerProcess(env, data_dir / "worker-first.log", "first")}
    web.wait_until_answering()
    yield web, workers, env, data_dir, {"Authorization": f"Bearer {token}"}
    web.stop()
    for worker in workers.values():
        worker.stop()
    drop_postgres_database(server_url, name)
    redis.Redis.from_url(redis_address).flushdb()


def create(web: StudioProcess, headers: dict, **inputs) -> str:
    response = httpx.post(
        f"{web.url}/api/v1/generations",
        json={"template": "bench-image", "inputs": {"subject": "a lighthouse"} | inputs},
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 201, response.text
    assert response.json()["kind"] == "image"
    return response.json()["id"]


def read_events(web, generation_id, headers, *, until=None, timeout=120):
    """(id, name, data) of the events of a generation, to `done` (or `until` the last)."""
    url = f"{web.url}/api/v1/generations/{generation_id}/events"
    last = (lambda events: until(events[-1])) if until else None
    return read_event_stream(url, headers, until=last, timeout=timeout)


def detail(web, generation_id, headers) -> dict:
    response = httpx.get(f"{web.url}/api/v1/generations/{generation_id}", headers=headers)
    assert response.status_code == 200
    return response.json()


def test_an_image_job_streams_its_progress_in_order_and_stores_its_images(deployment):
    web, _, _, _, headers = deployment
    generation_id = create(web, headers, count=2)

    first = read_events(web, generation_id, headers, until=lambda e: e[2].get("stage") == "drawing")
    # While the image is drawn, its preview is there for its owner.
    preview = httpx.get(web.url + first[-1][2]["preview_url"], headers=headers)
    assert preview.status_code == 200
    assert preview.headers["content-type"] == "image/webp"
    rest = read_events(web, generation_id, {**headers, "Last-Event-ID": str(first[-1][0])})
    events = first + rest

    ids = [event_id for event_id, _, _ in events]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    names = [name for _, name, _ in events]
    assert names[0] == "queued"
    assert names[-1] == "done"
    progress = [data for _, name, data in events if name == "progress"]
    stages = [data["stage"] for data in progress]
    assert stages[0] == "starting"
    assert stages[-1] == "processing"
    assert stages.count("drawing") == 4  # two previews of each of the two images
    percents = [data["percent"] for data in progress]
    assert percents == sorted(percents)
    # Previews are gone once the images are stored.
    assert httpx.get(web.url + progress[1]["preview_url"], headers=headers).status_code == 404
    assert events[-1][2]["status"] == "completed"

    result = detail(web, generation_id, headers)
    assert result["status"] == "completed"
    assert result["image_count"] == 2
    assert len(result["images"]) == 2
    image = httpx.get(result["images"][0]["url"], headers=headers)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")
    thumbnail = httpx.get(result["images"][0]["thumbnail_url"], headers=headers)
    assert thumbnail.headers["content-type"] == "image/webp"
    width, height = result["images"][0]["width"], result["images"][0]["height"]
    from io import BytesIO

    assert Image.open(BytesIO(image.content)).size == (width, height)


def test_a_reader_joining_mid_job_gets_the_current_state_then_the_rest(deployment):
    web, _, _, _, headers = deployment
    generation_id = create(web, headers, count=1)
    first = read_events(web, generation_id, headers, until=lambda e: e[1] == "progress")
    last_seen = first[-1][0]

    rest = read_events(web, generation_id, {**headers, "Last-Event-ID": str(last_seen)})

    assert all(event_id > last_seen for event_id, _, _ in rest)
    assert rest[-1][1] == "done"


def test_a_job_whose_pool_process_is_killed_is_redelivered_and_completes_once(deployment):
    web, workers, _, data_dir, headers = deployment
    worker = workers["first"]
    generation_id = create(web, headers, count=1)
    read_events(web, generation_id, headers, until=lambda e: e[2].get("stage") == "drawing")

    for child in worker.pool_processes():
        child.send_signal(signal.SIGKILL)

    # The stream ends with the job's end, however long the redelivery takes.
    events = read_events(web, generation_id, headers, timeout=150)
    assert events[-1][2]["status"] == "completed"
    result = detail(web, generation_id, headers)
    assert result["image_count"] == 1
    assert len(result["images"]) == 1
    stored = list((data_dir / "media" / "generations" / generation_id).rglob("*.png"))
    assert len(stored) == 1  # the killed attempt's files were cleared


def test_a_job_of_a_dead_worker_machine_is_taken_by_another_worker(deployment):
    web, workers, env, data_dir, headers = deployment
    generation_id = create(web, headers, count=1)
    read_events(web, generation_id, headers, until=lambda e: e[2].get("stage") == "drawing")

    workers["first"].kill()
    workers["second"] = WorkerProcess(env, data_dir / "worker-second.log", "second")

    events = read_events(web, generation_id, headers, timeout=150)
    assert events[-1][2]["status"] == "completed"
    result = detail(web, generation_id, headers)
    assert result["image_count"] == 1
    assert len(result["images"]) == 1


def test_another_person_cannot_see_the_images(deployment):
    web, _, env, _, headers = deployment
    generation_id = create(web, headers, count=1)
    read_events(web, generation_id, headers)
    url = detail(web, generation_id, headers)["images"][0]["url"]
    stranger = (
        manage(
            env,
            "shell",
            "-c",
            "from django.contrib.auth import get_user_model\n"
            "from studio.services import api_token_create\n"
            "user, _ = get_user_model().objects.get_or_create(username='stranger')\n"
            "print(api_token_create(user=user, name='x')[1])",
        )
        .strip()
        .splitlines()[-1]
    )

    response = httpx.get(url, headers={"Authorization": f"Bearer {stranger}"})

    assert response.status_code == 404
    assert httpx.get(url).status_code == 401
