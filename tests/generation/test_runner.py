"""The runner streams a generation into the event log and the database, whatever the provider does."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.utils import translation

from generation.events.log import EventName, InProcessEventLog
from generation.lifecycle import transitions
from generation.models import Generation
from generation.text.runs import _GENERIC_ERROR, run_generation
from tests.factories import GenerationFactory
from tests.fakes import ScriptedProvider

pytestmark = pytest.mark.django_db(transaction=True)


async def run(provider, **generation_kwargs):
    generation = await sync_to_async(GenerationFactory)(**generation_kwargs)
    log = InProcessEventLog(retention_seconds=60)
    await run_generation(generation.pk, log=log, provider=provider)
    events = [e async for e in log.follow(str(generation.pk), 0, heartbeat=1)]
    return await Generation.objects.aget(pk=generation.pk), events


async def test_a_completed_generation_stores_exactly_the_streamed_text():
    generation, events = await run(ScriptedProvider(["Dear ", "Ms Sato,", "\n\nThank you."]))
    deltas = [e.data["text"] for e in events if e.name is EventName.DELTA]
    assert "".join(deltas) == generation.output == "Dear Ms Sato,\n\nThank you."
    assert generation.status == Generation.Status.COMPLETED
    assert generation.finish_reason == "stop"
    assert (generation.input_tokens, generation.output_tokens) == (11, 3)
    assert generation.created_at <= generation.started_at <= generation.first_token_at
    assert generation.first_token_at <= generation.finished_at
    assert events[-1].name is EventName.DONE
    assert events[-1].data == {
        "status": "completed",
        "finish_reason": "stop",
        "usage": {"input_tokens": 11, "output_tokens": 3},
    }


async def test_failure_before_the_first_token_is_an_error_then_done():
    generation, events = await run(ScriptedProvider(["never"], fail_after=0))
    assert generation.status == Generation.Status.FAILED
    assert generation.output == ""
    assert generation.error_message == "The model service failed."
    assert [e.name for e in events] == ["error", "done"]
    assert events[0].data == {"code": "upstream_error", "message": "The model service failed."}


async def test_failure_mid_stream_keeps_the_partial_text():
    generation, events = await run(ScriptedProvider(["One. ", "Two. ", "Three."], fail_after=2))
    assert generation.status == Generation.Status.FAILED
    assert generation.output == "One. Two. "
    assert [e.name for e in events] == ["delta", "delta", "error", "done"]


async def test_an_unexpected_exception_becomes_a_clear_failure():
    generation, events = await run(ScriptedProvider(["a"], fail_after=1, error=KeyError("boom")))
    assert generation.status == Generation.Status.FAILED
    assert generation.output == "a"
    assert "Something went wrong" in generation.error_message
    assert "boom" not in generation.error_message


async def test_a_stream_that_ends_without_a_result_is_not_called_complete():
    generation, events = await run(ScriptedProvider(["half an answer"], finish_reason=None))
    assert generation.status == Generation.Status.FAILED
    assert generation.error_code == "incomplete_stream"
    assert generation.output == "half an answer"


async def test_nul_characters_are_dropped_so_postgresql_can_store_the_text():
    generation, events = await run(ScriptedProvider(["a\x00b", "\x00", "c"]))
    assert generation.output == "abc"
    assert "".join(e.data["text"] for e in events if e.name is EventName.DELTA) == "abc"


async def test_a_generation_that_is_not_queued_is_not_run_again():
    provider = ScriptedProvider(["x"])
    generation, events = await run(provider, status=Generation.Status.COMPLETED, output="old")
    assert generation.output == "old"
    assert provider.requests == []
    assert events == []


async def test_the_provider_gets_the_prompt_and_labelled_inputs():
    provider = ScriptedProvider(["ok"])
    await run(provider, system_prompt="Be brief.", prompt="Write to Ms Sato.")
    request = provider.requests[0]
    assert (request.system, request.prompt) == ("Be brief.", "Write to Ms Sato.")


async def test_a_generation_that_cannot_even_start_is_failed_not_left_queued(monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(transitions, "generation_start", broken)
    generation, events = await run(ScriptedProvider(["x"]))
    assert generation.status == Generation.Status.FAILED
    assert "Something went wrong" in generation.error_message


async def test_error_messages_are_stored_in_the_language_of_the_person_who_ran_it():
    generation, _events = await run(
        ScriptedProvider(["a"], fail_after=1, error=KeyError("boom")), language="ja"
    )
    with translation.override("ja"):
        japanese = str(_GENERIC_ERROR)
    assert japanese != "Something went wrong while generating. Please try again."
    assert generation.error_message == japanese
