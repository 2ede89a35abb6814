"""docjobs' actors as Inngest functions of one app.

Each actor becomes the function ``<job id>`` triggered by the event of the same
name (and, for scheduled jobs, by its cron expression from the scheduler's table).
A run waits for its delay, and while its queue is paused on the board, before it
starts (``waits``). The function validates the event's payload, runs the actor with
``run_task`` mapped to ``step.run`` (a step finished before a failure is memoised by
Inngest and not run again), and turns docjobs' final failures (a bad payload, a job
abandoned) into ``NonRetriableError``. A cron run (and a board run-now) asks the cron
guard first, as a worker does: a paused schedule's slot, a late or duplicate firing is
skipped and recorded in the ledger, and how a firing ended is recorded there too. A
job's outcome is written to its row before the call that ends it is answered
(``recorder``); the runs Inngest cancelled, timed out or gave up on are closed by one
more function (``endings``). A job type's flow control becomes the function's own
options (``flow``).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import dramatiq
import inngest
from dramatiq.middleware import CurrentMessage

from docjobs import errors, joblogs, tasks
from docjobs.brokers.history import JobHistory
from docjobs.brokers.inngest.endings import ended_function
from docjobs.brokers.inngest.events import (
    ARGS_FIELD,
    CANCEL_EVENT,
    MESSAGE_ID_FIELD,
    OPTIONS_FIELD,
    RUN_AT_FIELD,
    RUN_ID_OPTION,
    SCHEDULED_EVENT,
)
from docjobs.brokers.inngest.flow import HandlerFlow
from docjobs.brokers.inngest.outcomes import Outcomes, retries_of
from docjobs.brokers.inngest.queue_limits import queue_concurrency
from docjobs.brokers.inngest.recorder import RETRIED, TRACEBACK_FRAMES, Recorder
from docjobs.brokers.inngest.replay import ReplaySkipping
from docjobs.brokers.inngest.waits import PausedCheck, hold_while_paused, wait_until_due
from docjobs.registry import SLOT_OPTION, JobActor
from docjobs.scheduler.guard import CronGuard
from docjobs.scheduler.table import CronTable

# The log lines of every call, the recorder's included (their logger name is what operators filter on).
logger = logging.getLogger(__name__)


def build_functions(
    client: inngest.Inngest,
    actors: Iterable[JobActor[Any, Any]],
    *,
    cron: CronTable,
    default_retries: int,
    history: JobHistory | None = None,
    broker: dramatiq.Broker | None = None,
    paused: PausedCheck | None = None,
    app_id: str | None = None,
    cron_guard: CronGuard | None = None,
    timeouts: Mapping[str, inngest.Timeouts] | None = None,
    log_sink: joblogs.LogSink | None = None,
    flow: HandlerFlow | None = None,
    queue_caps: Mapping[str, int] | None = None,
) -> list[inngest.Function[Any]]:
    """One function per actor, with its event trigger, its cron trigger if scheduled, and its retries.

    With ``history`` (and the ``broker`` the actors are declared on), each call
    records the job's start, retry, success or failure in ``background_job``, as
    the worker does on the other providers, and (given the ``app_id`` that
    prefixes the functions' ids in Inngest's events) one more function closes the
    runs Inngest cancelled, timed out or gave up on. With ``paused`` (is this queue
    paused?), a run of a paused queue waits until it is resumed. With ``cron_guard``,
    a firing runs only if the cron ledger lets it (see :mod:`docjobs.scheduler.guard`).
    ``timeouts`` gives jobs (by name) Inngest's ``timeouts``: a run that outlives them
    is cancelled. With ``log_sink``, the actors' ``log_line`` and ``set_progress`` are
    written there, once per run (not again when Inngest replays the function to reach
    its next step). ``flow`` applies what Inngest's own flow control would drop without
    closing the job's history (see :class:`~docjobs.brokers.inngest.flow.HandlerFlow`).
    With ``queue_caps`` (and ``app_id``), the functions of a capped queue share its
    concurrency limit (``queue_limits``).
    """
    timeouts = dict(timeouts or {})
    actors = sorted(actors, key=lambda actor: actor.actor_name)
    recorder = Recorder(history, broker, logger)
    outcomes = Outcomes(broker)
    flow = flow or HandlerFlow(None, None)
    functions = []
    for job in actors:
        triggers: list[inngest.TriggerEvent | inngest.TriggerCron] = [
            inngest.TriggerEvent(event=job.actor_name)
        ]
        schedule = cron.get(job.actor_name)
        if schedule is not None and schedule.enabled:
            zone = cron.timezone.key
            prefix = "" if zone == "UTC" else f"TZ={zone} "  # Inngest's time-zone prefix
            triggers.append(inngest.TriggerCron(cron=f"{prefix}{schedule.expression}"))
        retries = int(job.options.get("max_retries", default_retries))
        queue_cap = queue_concurrency(app_id or client.app_id, job.queue_name, queue_caps or {})
        functions.append(
            client.create_function(
                fn_id=job.actor_name,
                name=job.display_name,
                trigger=triggers,
                retries=retries,
                cancel=[
                    inngest.Cancel(
                        event=CANCEL_EVENT,
                        if_exp=f"event.data.{MESSAGE_ID_FIELD} == async.data.{MESSAGE_ID_FIELD}",
                    )
                ],
                timeouts=timeouts.get(job.actor_name),
                **_options(job, flow, queue_cap),
            )(_handler(job, retries, recorder, outcomes, paused, cron_guard, log_sink, flow))
        )
    if recorder.history is not None and app_id is not None:
        by_name = {job.actor_name: job for job in actors}
        functions.append(ended_function(client, by_name, recorder, app_id, timeouts))
    return functions


def _options(
    job: JobActor[Any, Any], flow: HandlerFlow, queue_cap: list[inngest.Concurrency] | None
) -> dict[str, Any]:
    """The function's flow-control options, its queue's cap joining its own concurrency (Inngest
    takes two constraints a function)."""
    options = flow.options(job)
    concurrency = [*(queue_cap or []), *options.pop("concurrency", [])]
    if concurrency:
        options["concurrency"] = concurrency
    return options


def _handler(
    job: JobActor[Any, Any],
    function_retries: int,
    recorder: Recorder,
    outcomes: Outcomes,
    paused: PausedCheck | None,
    guard: CronGuard | None,
    log_sink: joblogs.LogSink | None = None,
    flow: HandlerFlow | None = None,
) -> Any:
    def run(ctx: inngest.ContextSync) -> Any:
        data = dict(ctx.event.data)
        message_id = str(data.pop(MESSAGE_ID_FIELD, None) or ctx.event.id or ctx.run_id)
        run_at = data.pop(RUN_AT_FIELD, None)
        options, args = _carried(data)
        if isinstance(run_at, str):
            wait_until_due(ctx, datetime.fromisoformat(run_at))
        if paused is not None:
            hold_while_paused(ctx, job.queue_name, paused)
        if ctx.event.name == SCHEDULED_EVENT:
            data = dict(job.firing_payload)  # the schedule's (an app's may have one)
            # The slot the guard reads, as the other drivers send it: the trigger's time.
            fired_at = datetime.fromtimestamp(ctx.event.ts / 1000, UTC) if ctx.event.ts else datetime.now(UTC)
            options[SLOT_OPTION] = fired_at.isoformat()
        # Actors may ask for their message (its id, its attempt, its options) as on the other providers.
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=job.queue_name,
            actor_name=job.actor_name,
            args=args,
            kwargs=data,
            options={**options, "retries": ctx.attempt, RUN_ID_OPTION: ctx.run_id},
            message_id=message_id,
            # The send sets the event's ts to the message's timestamp: max_age counts from it.
            message_timestamp=ctx.event.ts or int(datetime.now(UTC).timestamp() * 1000),
        )
        proxy = dramatiq.MessageProxy(message)
        # Asked at every call of the run: the ledger's answer for a running firing stays "running".
        if guard is not None and not guard.admit(proxy):
            return None
        if _skipped_for_age(ctx, outcomes, proxy):
            recorder.skipped(proxy)
            outcomes.skipped(proxy)
            return None
        if flow is not None:
            dropped = flow.dropped_by(ctx, job, message)
            if dropped is not None:
                recorder.dropped(proxy, dropped)
                return None
            flow.close_superseded(ctx, job, message)
        retries = retries_of(message, function_retries)
        recorder.started(proxy)
        step_token = tasks.inngest_step.set(_Steps(ctx, retries, recorder, proxy))
        message_token = CurrentMessage._MESSAGE.set(message)
        log_token = joblogs.sink.set(None if log_sink is None else ReplaySkipping(log_sink, ctx))
        try:
            result = job(*args, **data)
        except errors.NON_RETRYABLE as exc:
            _ended(recorder, outcomes, proxy, exc, guard)
            raise inngest.NonRetriableError(f"{type(exc).__name__}: {exc}") from exc
        except inngest.NonRetriableError as exc:  # from a step, wrapping docjobs' error
            _ended(recorder, outcomes, proxy, exc.__cause__ or exc, guard)
            raise
        except inngest.StepError as exc:  # a step out of retries, not caught by the job
            _ended(recorder, outcomes, proxy, _stepped(exc), guard)
            raise
        except Exception as exc:
            if ctx.attempt < retries:
                recorder.failed(proxy, exc)
                if guard is not None:
                    guard.record_end(proxy, exc)
                raise _retried(exc) from exc
            _ended(recorder, outcomes, proxy, exc, guard)
            if retries < function_retries:  # the message's own max_retries: Inngest would go on
                raise inngest.NonRetriableError(f"{type(exc).__name__}: {exc}") from exc
            raise
        finally:
            joblogs.sink.reset(log_token)
            CurrentMessage._MESSAGE.reset(message_token)
            tasks.inngest_step.reset(step_token)
        # Reached only by the call that finishes the function (a new step interrupts).
        # The follow-ups go first: if they cannot be sent, Inngest calls again.
        outcomes.succeeded(proxy, result)
        recorder.finished(proxy, result)
        if guard is not None:
            guard.record_end(proxy, None)
        return result

    run.__name__ = job.fn.__name__
    return run


def _carried(data: dict[str, Any]) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """Take the message's options and positional arguments out of the event's data.

    Raises:
        errors.PayloadError: They are not a JSON object and a list.
    """
    options = data.pop(OPTIONS_FIELD, None) or {}
    args = data.pop(ARGS_FIELD, None) or []
    if not isinstance(options, dict) or not isinstance(args, list):
        raise inngest.NonRetriableError(
            f"PayloadError: the event's {OPTIONS_FIELD} must be an object and {ARGS_FIELD} a list"
        )
    return options, tuple(args)


def _skipped_for_age(ctx: inngest.ContextSync, outcomes: Outcomes, proxy: dramatiq.MessageProxy) -> bool:
    """Whether ``AgeLimit`` skips the message, decided once per run (in a step) when it has a max_age.

    A step, so that a run which started stays started: a later call of the same
    run (after one of the job's steps) must not find it too old half-way.
    """
    if not outcomes.age_limited(proxy):
        return False
    too_old: bool = ctx.step.run("docjobs-max-age", lambda: outcomes.too_old(proxy))
    if too_old:
        proxy.fail()
    return too_old


def _ended(
    recorder: Recorder,
    outcomes: Outcomes,
    proxy: dramatiq.MessageProxy,
    exc: BaseException,
    guard: CronGuard | None = None,
) -> None:
    """A failure Inngest will not retry: its callbacks and results, then recorded FAILED.

    The follow-ups go first, as on success: an ``on_failure`` callback is recorded
    PENDING before its job is recorded FAILED, so a ``join`` that sees the job end
    waits for the callback too (issue 19).
    """
    # The callback's message data carries the traceback, as after a worker's Retries hook.
    proxy.options["traceback"] = traceback.format_exc(limit=TRACEBACK_FRAMES)
    outcomes.failed(proxy, exc)
    recorder.failed(proxy, exc, final=True)
    if guard is not None:
        guard.record_end(proxy, exc)


def _retried(exc: Exception) -> Exception:
    """``Retry(delay=)`` as Inngest's RetryAfterError (Inngest waits that long); other errors as they are."""
    if isinstance(exc, dramatiq.Retry) and exc.delay is not None:
        return inngest.RetryAfterError(f"Retry: {exc}", int(exc.delay))
    return exc


class _Steps:
    """``run_task`` as ``step.run``: final failures stay final inside steps; failures are recorded."""

    def __init__(
        self,
        ctx: inngest.ContextSync,
        retries: int,
        recorder: Recorder,
        proxy: dramatiq.MessageProxy,
    ) -> None:
        self.ctx = ctx
        self.retries = retries
        self.recorder = recorder
        self.proxy = proxy

    def run(self, key: str, fn: Callable[[], Any]) -> Any:
        def guarded() -> Any:
            try:
                return fn()
            except errors.NON_RETRYABLE as exc:
                raise inngest.NonRetriableError(f"{type(exc).__name__}: {exc}") from exc
            except Exception as exc:
                runs = self.ctx.attempt + 1
                if runs >= tasks.TASK_MAX_RETRIES:  # as run_task on the other providers
                    final = errors.TaskExceededRetries(
                        f"task {key!r} of job {self.proxy.message_id} exceeded its retries; "
                        f"last error: {type(exc).__name__}: {exc}"
                    )
                    raise inngest.NonRetriableError(f"TaskExceededRetries: {final}") from final
                # Inngest retries the step, and after the last attempt hands the job a StepError,
                # which it may catch and go on: only the job's own end is final.
                last = self.ctx.attempt >= self.retries
                self.recorder.failed(self.proxy, exc, then="the job decides" if last else RETRIED)
                raise

        return self.ctx.step.run(key, guarded)


def _stepped(error: inngest.StepError) -> Exception:
    """The job's own error inside a StepError (which Inngest hands back by name and message)."""
    named: type[Exception] = type(error.name or "StepError", (Exception,), {})
    return named(error.message)
