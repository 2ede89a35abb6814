"""Queues and their caps (issue 22): which queue each built-in job runs on, the settings, the hold limit."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

import docjobs.actors  # noqa: F401 - declares docjobs' jobs
from docjobs import queues, registry
from docjobs.brokers.local import consumer as consumer_module
from docjobs.errors import SettingsError
from docjobs.settings import Settings
from tests.support.fakes import ManualClock, stub_consumer

BASE = {"NEXT_PRIVATE_DATABASE_URL": "postgresql://db.internal/docjobs", "NODE_ENV": "development"}


def test_sealing_emails_and_webhooks_run_on_queues_of_their_own() -> None:
    declared = {name: actor.queue_name for name, actor in registry.declared().items()}

    assert "sealing" == declared["internal.seal-document"]
    assert "webhooks" == declared["internal.execute-webhook"]
    assert {"emails"} == {queue for name, queue in declared.items() if name.startswith("send.")}
    assert "default" == declared["internal.seal-document-sweep"]
    assert "default" == declared["internal.cleanup-background-jobs"]


def test_by_default_sealing_is_capped_below_every_provider_s_worker_threads() -> None:
    local = Settings.from_environ(BASE)
    bullmq = Settings.from_environ(
        {**BASE, "NEXT_PRIVATE_JOBS_PROVIDER": "bullmq", "NEXT_PRIVATE_REDIS_URL": "redis://r"}
    )

    assert {"sealing": 2, "webhooks": 4} == local.queue_concurrency
    assert local.queue_concurrency["sealing"] < local.worker_threads
    assert bullmq.queue_concurrency["sealing"] < bullmq.worker_threads


def test_a_queue_s_variable_sets_its_cap_and_the_thread_count_is_not_a_queue() -> None:
    settings = Settings.from_environ(
        {
            **BASE,
            "NEXT_PRIVATE_JOBS_SEALING_CONCURRENCY": "3",
            "NEXT_PRIVATE_JOBS_EMAILS_CONCURRENCY": " 6 ",
            "NEXT_PRIVATE_JOBS_WEBHOOKS_CONCURRENCY": "",  # unset: the default
            "NEXT_PRIVATE_JOBS_CONCURRENCY": "12",
        }
    )

    assert {"sealing": 3, "emails": 6, "webhooks": 4} == settings.queue_concurrency
    assert 12 == settings.concurrency


# "+3", "1_0" and Arabic-Indic three pass int(); a cap is written in ASCII digits (second outside trial).
@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "1025", "+3", "1_0", "\u0663"])
def test_a_bad_cap_is_refused_in_one_line_naming_the_variable(value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_environ({**BASE, "NEXT_PRIVATE_JOBS_SEALING_CONCURRENCY": value})

    message = str(raised.value)
    assert message.startswith("NEXT_PRIVATE_JOBS_SEALING_CONCURRENCY: must be a whole number from 1 to 1024")
    assert repr(value) in message
    assert "\n" not in message


def test_a_queue_written_in_small_letters_is_refused_naming_the_variable_meant() -> None:
    name = "NEXT_PRIVATE_JOBS_Sealing_CONCURRENCY"
    with pytest.raises(SettingsError) as raised:
        Settings.from_environ({**BASE, name: "2"})
    assert f"{name}: write the queue in capitals, as NEXT_PRIVATE_JOBS_SEALING_CONCURRENCY" == str(
        raised.value
    )


@pytest.mark.parametrize("name", ["NEXT_PRIVATE_JOBS_SEALNG_CONCURRENCY"])
def test_a_cap_for_a_queue_docjobs_does_not_have_is_refused(name: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_environ({**BASE, name: "2"})

    message = str(raised.value)
    assert message.startswith(f"{name}: there is no queue")
    assert "NEXT_PRIVATE_JOBS_SEALING_CONCURRENCY" in message  # what was meant
    assert "\n" not in message


def test_a_consumer_of_a_capped_queue_asks_for_at_most_the_cap_and_a_delay_queue_is_not_capped() -> None:
    caps = {"sealing": 2}

    assert 2 == queues.capped_prefetch(caps, "sealing", 16)
    assert 1 == queues.capped_prefetch(caps, "sealing", 1)
    assert 16 == queues.capped_prefetch(caps, "emails", 16)
    assert 16000 == queues.capped_prefetch(caps, "sealing.DQ", 16000)


def test_the_local_consumer_holds_no_more_than_the_cap_however_fast_jobs_finish(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = ManualClock()
    monkeypatch.setattr(consumer_module, "time", SimpleNamespace(monotonic=clock.monotonic))
    consumer, limits = stub_consumer(monkeypatch, 16, cap=3)

    for _ in range(5000):  # 10,000 jobs/s: uncapped, the hold grows to 4 x 16
        message = next(consumer)
        assert message is not None
        clock.now += 0.0001
        consumer.ack(cast(Any, message))

    assert 3 == max(limits)
