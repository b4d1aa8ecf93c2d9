"""A generation's life apart from its page: stop, coalescing, leases, delivery."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse
from django.utils import timezone

from generation import services
from generation.events.log import EventName, InProcessEventLog
from generation.lifecycle import transitions
from generation.lifecycle.delivery import generation_settle_overdue
from generation.models import Generation
from generation.reading.follow import follow_generation
from generation.reading.streams import client_events
from generation.signals import generation_finished
from generation.text.runner import runner
from generation.text.runs import run_generation
from tests.factories import GenerationFactory, UserFactory
from tests.fakes import ScriptedProvider
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
Status = Generation.Status


@pytest.fixture
def provider(monkeypatch):
    """Every generation in this process runs on a slow scripted model."""
    scripted = ScriptedProvider([f"part {n}. " for n in range(40)], delay=0.05)
    monkeypatch.setattr(runner, "provider", scripted)
    return scripted


@pytest.fixture
def finished_signals():
    received = []

    def receiver(sender, generation, delivery, **kwargs):
        received.append((generation.pk, delivery))

    generation_finished.connect(receiver)
    yield received
    generation_finished.disconnect(receiver)


def start(**kwargs) -> Generation:
    generation = GenerationFactory(
        lease_expires_at=timezone.now() + timedelta(seconds=30), **kwargs
    )
    runner.submit(generation.pk)
    return generation


def text_so_far(generation_id) -> str:
    events = runner.log._streams[str(generation_id)].events
    return "".join(e.data["text"] for e in events if e.name is EventName.DELTA)


# --- Stop ----------------------------------------------------------------


def test_stop_ends_a_running_generation_within_a_second_and_keeps_its_text(provider):
    generation = start()
    wait_for(lambda: len(text_so_far(generation.pk)) > 10)
    asked = time.monotonic()
    services.generation_cancel(generation=generation)
    runner.wait(generation.pk, timeout=5)
    assert time.monotonic() - asked < 1
    generation.refresh_from_db()
    assert generation.status == Status.CANCELLED
    assert generation.finish_reason == "cancelled"
    assert generation.output
    assert generation.output == text_so_far(generation.pk)
    events = runner.log._streams[str(generation.pk)].events
    assert events[-1].name is EventName.DONE
    assert events[-1].data["status"] == "cancelled"


def test_stop_button_posts_and_the_page_shows_the_kept_text(client, provider):
    user = UserFactory()
    client.force_login(user)
    generation = start(user=user)
    page = client.get(generation.get_absolute_url())
    stop_url = reverse("generation:cancel", args=[generation.pk])
    assert stop_url in page.content.decode()
    wait_for(lambda: text_so_far(generation.pk))
    response = client.post(stop_url, headers={"HX-Request": "true"})
    assert response.status_code == 204
    runner.wait(generation.pk, timeout=5)
    page = client.get(generation.get_absolute_url()).content.decode()
    assert "Stopped. The text written before that is kept." in page
    assert stop_url not in page


def test_stopping_a_queued_generation_cancels_it_before_it_starts(provider):
    generation = GenerationFactory()
    services.generation_cancel(generation=generation)
    generation.refresh_from_db()
    assert generation.status == Status.CANCELLED
    runner.submit(generation.pk)
    runner.wait(generation.pk, timeout=5)
    assert provider.requests == []


def test_someone_else_cannot_stop_my_generation(client, provider):
    generation = start()
    client.force_login(UserFactory())
    response = client.post(reverse("generation:cancel", args=[generation.pk]))
    assert response.status_code == 404
    runner.wait(generation.pk, timeout=10)
    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED


def test_a_stop_that_reaches_another_process_is_picked_up_from_the_database(provider):
    generation = start()
    wait_for(lambda: text_so_far(generation.pk))
    # As another process would: mark it, without a way to reach this runner directly.
    Generation.objects.filter(pk=generation.pk).update(cancel_requested_at=timezone.now())
    asked = time.monotonic()
    runner.wait(generation.pk, timeout=5)
    assert time.monotonic() - asked < 1.5
    generation.refresh_from_db()
    assert generation.status == Status.CANCELLED


# --- Coalescing ----------------------------------------------------------


async def coalesced_run(settings, deltas, delay):
    settings.STUDIO_COALESCE_MS = 40
    generation = await sync_to_async(GenerationFactory)()
    log = InProcessEventLog(retention_seconds=60)
    arrivals = []

    async def watch():
        async for event in log.follow(str(generation.pk), 0, heartbeat=5):
            if event.name is EventName.DELTA:
                arrivals.append((time.monotonic(), event.data["text"]))
            if event.name is EventName.DONE:
                return

    log.open(str(generation.pk))
    watcher = asyncio.create_task(watch())
    provider = ScriptedProvider(deltas, delay=delay)
    await run_generation(generation.pk, log=log, provider=provider)
    await watcher
    return await Generation.objects.aget(pk=generation.pk), arrivals


async def test_a_burst_of_tokens_goes_out_as_few_events_with_the_same_text(settings):
    deltas = [f"t{n} " for n in range(50)]
    generation, arrivals = await coalesced_run(settings, deltas, delay=0.002)
    assert "".join(text for _, text in arrivals) == generation.output == "".join(deltas)
    assert len(arrivals) < len(deltas) / 3


async def test_a_lone_token_is_not_held_back(settings):
    generation, arrivals = await coalesced_run(settings, ["alone", " again"], delay=0.3)
    assert [text for _, text in arrivals] == ["alone", " again"]
    started = generation.started_at
    first_token_delay = (generation.first_token_at - started).total_seconds()
    # The provider waited 0.3 s; the window (0.04 s) adds nothing to a lone token.
    assert first_token_delay < 0.3 + 0.04


def test_checkpoints_save_the_text_of_running_generations_only():
    running = GenerationFactory(status=Status.RUNNING, output="")
    other = GenerationFactory(status=Status.RUNNING, output="untouched")
    finished = GenerationFactory(status=Status.COMPLETED, output="The whole answer")
    first_token_at = timezone.now()
    transitions.generation_checkpoint(
        checkpoints=[
            transitions.Checkpoint(running.pk, "Half an answer, 日本語\x01", 2, first_token_at),
            transitions.Checkpoint(finished.pk, "Half", 2, first_token_at),
        ]
    )
    running.refresh_from_db()
    assert (running.output, running.events_before_text) == ("Half an answer, 日本語\x01", 2)
    assert running.first_token_at == first_token_at
    other.refresh_from_db()
    assert other.output == "untouched"
    finished.refresh_from_db()
    assert (finished.output, finished.first_token_at) == ("The whole answer", None)


# --- Leases: a process that died -----------------------------------------


def test_a_generation_whose_process_died_is_failed_with_its_saved_text():
    generation = GenerationFactory(
        status=Status.RUNNING,
        output="Saved before the crash",
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    alive = GenerationFactory(
        status=Status.RUNNING, lease_expires_at=timezone.now() + timedelta(seconds=30)
    )
    assert transitions.generation_reap() == [generation.pk]
    generation.refresh_from_db()
    alive.refresh_from_db()
    assert generation.status == Status.FAILED
    assert generation.error_code == "interrupted"
    assert generation.output == "Saved before the crash"
    assert alive.status == Status.RUNNING


async def test_a_reader_of_a_died_generation_gets_its_text_an_error_and_done():
    generation = await sync_to_async(GenerationFactory)(
        status=Status.RUNNING, output="Saved text", lease_expires_at=timezone.now()
    )
    await sync_to_async(transitions.generation_reap)()
    events = [e async for e in follow_generation(generation.pk, 0) if e is not None]
    assert [e.name for e in events] == ["delta", "error", "done"]
    assert events[0].data["text"] == "Saved text"


def test_running_generations_renew_their_leases(settings, provider):
    settings.STUDIO_LEASE_SECONDS = 0.6
    generation = start()
    wait_for(lambda: Generation.objects.get(pk=generation.pk).status == Status.RUNNING)
    first = Generation.objects.get(pk=generation.pk).lease_expires_at
    wait_for(lambda: Generation.objects.get(pk=generation.pk).lease_expires_at > first)
    time.sleep(0.7)
    assert Generation.objects.get(pk=generation.pk).status == Status.RUNNING
    services.generation_cancel(generation=generation)
    runner.wait(generation.pk, timeout=5)


# --- Delivery and generation_finished -------------------------------------


async def read_all(generation_id, after=0, stop_after=None):
    seen = []
    stream = client_events(generation_id, after)
    async for batch in stream:
        if batch is None:
            continue
        seen.extend(batch)
        if stop_after is not None and len(seen) >= stop_after:
            seen = seen[:stop_after]
            break
    await stream.aclose()
    return seen


def test_a_reader_that_receives_done_settles_success_once(provider, finished_signals):
    provider.deltas, provider.delay = ["Hello", " world"], 0.01
    generation = start()
    events = asyncio.run(read_all(generation.pk))
    assert events[-1].name is EventName.DONE
    generation.refresh_from_db()
    assert generation.delivery == Generation.Delivery.SUCCESS
    # A second reader, and the runner's own settling after the grace period, change nothing.
    asyncio.run(read_all(generation.pk))
    time.sleep(0.4)
    assert finished_signals == [(generation.pk, "success")]


def test_nobody_reading_settles_disconnected_before_streaming(provider, finished_signals):
    provider.deltas, provider.delay = ["Hello"], 0
    generation = start()
    runner.wait(generation.pk, timeout=5)
    wait_for(lambda: finished_signals)
    assert finished_signals == [(generation.pk, "client_disconnected_before_streaming")]


def test_a_reader_that_left_midway_settles_disconnected_while_streaming(provider, finished_signals):
    generation = start()
    events = asyncio.run(read_all(generation.pk, stop_after=2))
    assert len(events) == 2
    runner.wait(generation.pk, timeout=10)
    wait_for(lambda: finished_signals)
    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED  # it carried on without its reader
    assert finished_signals == [(generation.pk, "client_disconnected_while_streaming")]


def test_an_unexpected_error_settles_unknown_error_at_once(provider, finished_signals):
    provider.deltas, provider.fail_after, provider.error = ["a"], 1, KeyError("boom")
    generation = start()
    runner.wait(generation.pk, timeout=5)
    wait_for(lambda: finished_signals)
    assert finished_signals == [(generation.pk, "unknown_error_occurred")]


def test_deliveries_left_unsettled_by_a_dead_process_are_settled_later(finished_signals):
    generation = GenerationFactory(
        status=Status.COMPLETED,
        finished_at=timezone.now() - timedelta(minutes=5),
        delivered_event_id=12,
    )
    assert generation_settle_overdue(older_than=timezone.now()) == 1
    assert generation_settle_overdue(older_than=timezone.now()) == 0
    assert finished_signals == [(generation.pk, "client_disconnected_while_streaming")]


# --- When the reader leaves ------------------------------------------------


def test_by_default_a_generation_finishes_when_its_reader_leaves(settings, provider):
    settings.STUDIO_DISCONNECT_GRACE_SECONDS = 0.1
    provider.deltas = ["x "] * 10
    generation = start()
    asyncio.run(read_all(generation.pk, stop_after=1))
    runner.wait(generation.pk, timeout=10)
    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED
    assert generation.output == "x " * 10


def test_cancel_on_disconnect_stops_it_after_the_grace_period(settings, provider):
    settings.STUDIO_CANCEL_ON_DISCONNECT = True
    settings.STUDIO_DISCONNECT_GRACE_SECONDS = 0.2
    generation = start()
    asyncio.run(read_all(generation.pk, stop_after=1))
    runner.wait(generation.pk, timeout=5)
    generation.refresh_from_db()
    assert generation.status == Status.CANCELLED
    assert 0 < len(generation.output) < len("".join(provider.deltas))


def test_a_refresh_within_the_grace_period_does_not_stop_it(settings, provider):
    settings.STUDIO_CANCEL_ON_DISCONNECT = True
    settings.STUDIO_DISCONNECT_GRACE_SECONDS = 0.3
    provider.deltas, provider.delay = ["y "] * 20, 0.05
    generation = start()

    async def refresh():
        first = await read_all(generation.pk, stop_after=1)
        # The page reloads and reconnects where it left off, well within the grace period.
        return first + await read_all(generation.pk, after=first[-1].id)

    events = asyncio.run(refresh())
    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED
    text = "".join(e.data["text"] for e in events if e.name is EventName.DELTA)
    assert text == generation.output


# --- finish_reason on the page, and Continue ------------------------------


def test_an_answer_cut_at_the_length_limit_offers_continue(client, monkeypatch):
    user = UserFactory()
    client.force_login(user)
    cut = ScriptedProvider(["The first half"], finish_reason="length")
    monkeypatch.setattr(runner, "provider", cut)
    generation = start(user=user)
    runner.wait(generation.pk, timeout=5)
    page = client.get(generation.get_absolute_url()).content.decode()
    assert "The answer was cut at the length limit." in page
    continue_url = reverse("generation:continue", args=[generation.pk])
    assert continue_url in page

    rest = ScriptedProvider([" and the rest."])
    monkeypatch.setattr(runner, "provider", rest)
    response = client.post(continue_url)
    continuation = Generation.objects.exclude(pk=generation.pk).get()
    assert response.url == continuation.get_absolute_url()
    runner.wait(continuation.pk, timeout=5)
    continuation.refresh_from_db()
    assert continuation.continued_from == generation
    assert continuation.output == " and the rest."
    assert rest.requests[0].continue_from == "The first half"
    assert rest.requests[0].prompt == generation.prompt


def test_a_safety_stop_is_explained_and_the_partial_text_kept(client, monkeypatch):
    user = UserFactory()
    client.force_login(user)
    monkeypatch.setattr(
        runner, "provider", ScriptedProvider(["Partial"], finish_reason="content_filter")
    )
    generation = start(user=user)
    runner.wait(generation.pk, timeout=5)
    page = client.get(generation.get_absolute_url()).content.decode()
    assert "safety filter stopped the answer" in page
    assert "Partial" in page


def test_continue_is_refused_for_an_answer_that_was_not_cut(client, provider):
    user = UserFactory()
    client.force_login(user)
    generation = GenerationFactory(user=user, status=Status.COMPLETED, finish_reason="stop")
    response = client.post(reverse("generation:continue", args=[generation.pk]))
    assert response.status_code == 302
    assert Generation.objects.count() == 1
