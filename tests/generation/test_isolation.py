"""Nothing one generation does can hurt another: a hostile model stream is
cleaned at the boundary, and a row the database refuses fails alone while the
runner's batched work (checkpoints, leases, reaping) carries on for the rest."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from generation.events.log import EventName
from generation.events.redis_bus import encode_event
from generation.lifecycle import transitions
from generation.models import Generation
from generation.providers.base import TextDelta
from generation.text.runner import runner
from generation.text.runs import UNSAVABLE
from studio.sse import sse_event
from studio.text import ModelTextCleaner, has_unsafe_characters
from tests.factories import GenerationFactory
from tests.fakes import ScriptedProvider
from tests.generation.test_runner import run
from tests.support.poison import MARKER, poisoned_database
from tests.support.waiting import wait_for

Status = Generation.Status

# What a broken or hostile model service can put in its JSON: a lone surrogate,
# an emoji's surrogate pair split across two chunks, NUL, other controls.
HOSTILE_DELTAS = ["Dear ", "\ud800", "client \ud83d", "\ude00 ", "a\x00b\x07c\x1b[31m", "\r\nend"]
CLEANED = "Dear \ufffdclient \U0001f600 abc[31m\r\nend"


@pytest.mark.django_db(transaction=True)
async def test_a_hostile_model_stream_is_cleaned_and_stored_sent_and_framed_alike():
    generation, events = await run(ScriptedProvider(HOSTILE_DELTAS))
    assert generation.status == Status.COMPLETED
    deltas = "".join(e.data["text"] for e in events if e.name is EventName.DELTA)
    assert deltas == generation.output == CLEANED
    for event in events:
        # Every encoder the events go through takes them: SSE, JSON, Redis.
        sse_event(event.id, event.name, json.dumps(event.data, ensure_ascii=False))
        for value in encode_event(event).values():
            value.encode("utf-8")
    # The ids still resume exactly (they count characters of the cleaned text).
    last_delta = [e for e in events if e.name is EventName.DELTA][-1]
    assert last_delta.id == generation.events_before_text + len(generation.output)


@given(st.lists(st.text(), max_size=8))
def test_cleaned_deltas_are_always_storable_and_keep_clean_text_as_it_is(deltas):
    cleaner = ModelTextCleaner()
    out = "".join([cleaner.feed(delta) for delta in deltas] + [cleaner.flush()])
    out.encode("utf-8")  # no lone surrogate survives
    assert not has_unsafe_characters(out)
    joined = "".join(deltas)
    if not has_unsafe_characters(joined):
        assert out == joined


@given(st.text(), st.characters(min_codepoint=0x10000), st.text())
def test_a_character_split_into_surrogates_across_deltas_is_joined(before, char, after):
    offset = ord(char) - 0x10000
    high, low = chr(0xD800 + (offset >> 10)), chr(0xDC00 + (offset & 0x3FF))
    cleaner = ModelTextCleaner()
    parts = [before + high, low + after]
    out = "".join([cleaner.feed(part) for part in parts] + [cleaner.flush()])
    assert char in out


# --- one row the database refuses ------------------------------------------------


class PoisonOne(ScriptedProvider):
    """Every answer streams slowly; the one whose prompt asks for it carries POISON."""

    async def stream(self, request):
        if MARKER in request.prompt:
            yield TextDelta(f"{MARKER} ")
        async for item in super().stream(request):
            yield item


@pytest.mark.django_db(transaction=True)
def test_a_row_the_database_refuses_fails_alone_while_the_others_stream_on(settings, monkeypatch):
    # Leases short enough that a missed renewal would get the healthy ones reaped
    # by this very process before they finish.
    settings.STUDIO_LEASE_SECONDS = 1.5
    deltas = [f"part {n}. " for n in range(60)]
    monkeypatch.setattr(runner, "provider", PoisonOne(list(deltas), delay=0.05))
    lease = timezone.now() + timedelta(seconds=30)
    with poisoned_database():
        poisoned = GenerationFactory(prompt=f"Write {MARKER}.", lease_expires_at=lease)
        healthy = [GenerationFactory(lease_expires_at=lease) for _ in range(4)]
        for generation in [poisoned, *healthy]:
            runner.submit(generation.pk)
        runner.wait(poisoned.pk, timeout=30)
        failed = Generation.objects.get(pk=poisoned.pk)
        assert failed.status == Status.FAILED
        assert failed.error_code == UNSAVABLE
        assert "could not be saved" in failed.error_message
        # The others are still running, and their checkpoints are still saved.
        wait_for(
            lambda: all(Generation.objects.get(pk=g.pk).output.count("part") >= 3 for g in healthy),
            timeout=30,
        )
        assert all(Generation.objects.get(pk=g.pk).status == Status.RUNNING for g in healthy)
        for generation in healthy:
            runner.wait(generation.pk, timeout=60)
    for generation in healthy:
        generation.refresh_from_db()
        assert generation.status == Status.COMPLETED, generation.error_message
        assert generation.output == "".join(deltas)
    events = runner.log._streams[str(poisoned.pk)].events
    assert [e.name for e in events][-2:] == [EventName.ERROR, EventName.DONE]


@pytest.mark.django_db(transaction=True)
def test_reaping_goes_on_past_a_row_the_database_refuses():
    lapsed = timezone.now() - timedelta(seconds=5)
    with poisoned_database():
        bad = GenerationFactory(status=Status.RUNNING, lease_expires_at=lapsed, output="x")
        Generation.objects.filter(pk=bad.pk).update(output="")  # before the trigger mattered
        good = [GenerationFactory(status=Status.RUNNING, lease_expires_at=lapsed) for _ in range(3)]
        original = transitions._reap_one

        def refuse_one(generation_id, *args, **kwargs):
            if generation_id == bad.pk:
                raise ValueError("this row is refused")
            return original(generation_id, *args, **kwargs)

        transitions._reap_one = refuse_one
        try:
            reaped = transitions.generation_reap()
        finally:
            transitions._reap_one = original
    assert set(reaped) == {g.pk for g in good}
    assert all(Generation.objects.get(pk=g.pk).status == Status.FAILED for g in good)
