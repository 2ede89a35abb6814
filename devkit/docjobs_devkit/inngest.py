"""An Inngest server for tests and the demo, written from the public SDK specification.

What it implements of a real server (inngest/inngest ``docs/SDK_SPEC.md``, and the
Python SDK's behaviour where the two differ):

- apps sync out of band: the SDK answers a PUT (signed in cloud mode, as Inngest
  signs it) by POSTing its functions to ``/fn/register`` with
  ``Authorization: Bearer sha256(signing key)``; or in band: the signed PUT says
  where Inngest reached the app and the app's signed answer lists its functions;
- ``POST /e/<event key>`` takes an event or a list, deduplicates by ``id`` within
  :attr:`InngestServer.event_id_window_seconds` (24 hours, as Inngest) and starts a
  run of every function whose trigger names the event;
- runs are driven by call requests (``POST <step url>``, signed ``t=..&s=..`` over
  the JCS form of the body), with step memoisation (``StepRun``), step retries
  (``StepError``, then the error memoised), ``StepFailed``, ``Sleep``,
  ``StepPlanned``, function retries with backoff, ``x-inngest-no-retry`` and
  ``retry-after``; responses must carry a valid signature in cloud mode;
- cron triggers fire on their schedule (or on :meth:`InngestServer.fire_cron`);
- a function's ``cancel`` events end its matching runs, and ``WaitForEvent`` steps
  end on a matching event or their timeout (``if`` equalities only);
- a run is cancelled by the REST API (``DELETE /v1/runs/<run id>``, bearer
  ``sha256(signing key)``; or :meth:`InngestServer.cancel_run`) or by its function's
  ``timeouts`` (``start``: not started within it; ``finish``: not finished within it
  of its first call); a call in flight then runs on, and its answer is dropped;
- a run that fails sends the system event ``inngest/function.failed``, one that is
  cancelled ``inngest/function.cancelled`` (the event's id is the run's, as Inngest's).
- function concurrency, throttle, rate limit and debounce, as synced: a call waits
  while a concurrency limit it counts against is reached (``inngest_concurrency``).

Backoffs are scaled by ``backoff_seconds`` so tests run fast. For fault runs,
``faults`` makes it lose a share of its calls (before or after the app ran them)
and make others twice at once, as a real network and a real executor's timeouts
do; a lost call counts as a failed attempt, as it does on Inngest.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import random
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import jcs
from cronsim import CronSim
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from docjobs_devkit import inngest_concurrency
from docjobs_devkit.http import serve

SCHEDULED_EVENT = "inngest/scheduled.timer"
FAILED_EVENT = "inngest/function.failed"
CANCELLED_EVENT = "inngest/function.cancelled"
#: The error of a cancelled run, as Inngest gives it.
CANCELLED_ERROR = {"name": "Error", "message": "function cancelled"}
#: The events that tell of a run's end: no run of their handlers sends another.
_SYSTEM_EVENTS = frozenset({FAILED_EVENT, CANCELLED_EVENT})
#: Marks the call that ends a ``WaitForEvent`` step by its timeout.
WAIT_TIMEOUT = "wait-timeout:"
#: The SDK never closes its HTTP clients: answers close the connection, so no socket lingers.
_CLOSE = {"connection": "close"}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h|d|w)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}


@dataclass
class Function:
    """A synced function: its composite id, triggers, step URL and retries."""

    id: str
    name: str
    triggers: list[dict[str, Any]]
    url: str
    retries: int
    #: Events that cancel its runs: ``{"event": name, "if": expression}``.
    cancel: list[dict[str, Any]] = field(default_factory=list)
    #: Its ``timeouts`` in seconds: ``start`` and ``finish``, when set.
    timeouts: dict[str, float] = field(default_factory=dict)
    #: Its flow control as synced: ``concurrency`` (a list), ``throttle``, ``rateLimit``, ``debounce``.
    flow: dict[str, Any] = field(default_factory=dict)

    @property
    def max_attempts(self) -> int:
        return self.retries + 1


@dataclass
class CallFaults:
    """Shares of calls lost before the app gets them, lost after it answered, and made twice."""

    drop_request: float = 0.0
    drop_answer: float = 0.0
    repeat: float = 0.0
    #: Seeds the draws; read once, when the emulator is made.
    seed: int = 0
    #: Only the calls of these functions (composite ids); every call when empty.
    functions: tuple[str, ...] = ()


@dataclass
class Call:
    """One call request and what the app answered (status 0: no answer)."""

    step_id: str
    attempt: int
    status: int
    body: Any
    headers: dict[str, str]
    #: The fault the emulator put on it: "", "dropped-request", "dropped-answer" or "repeated".
    fault: str = ""


@dataclass
class Run:
    """One run of a function for one event."""

    id: str
    function: Function
    event: dict[str, Any]
    memo: dict[str, Any] = field(default_factory=dict)
    stack: list[str] = field(default_factory=list)
    attempt: int = 0
    status: str = "running"
    output: Any = None
    error: Any = None
    calls: list[Call] = field(default_factory=list)
    disable_immediate_execution: bool = False
    sleeping: str | None = None
    #: A ``WaitForEvent`` step waiting: (step id, event name, ``if`` expression).
    waiting: tuple[str, str, str | None] | None = None
    done: threading.Event = field(default_factory=threading.Event)
    #: When its first call was made (monotonic seconds); ``None`` before.
    started: float | None = None
    #: Its first call waits until then (monotonic seconds): a debounce or a throttle.
    not_before: float = 0.0


#: Inngest drops an event whose id it saw within the last 24 hours.
EVENT_ID_WINDOW_SECONDS = 24 * 3600


class InngestServer:
    """The emulator: start it, point the SDK at :attr:`url`, sync the app, send events.

    Args:
        signing_key: The app's signing key; ``None`` runs in dev mode (nothing signed).
        event_key: The key ``/e/<key>`` accepts.
        backoff_seconds: The first retry's delay; it doubles per attempt.
        concurrency: Calls made at once (one keeps runs deterministic for tests);
            a run is never called twice at once, except by a repeated call.
        faults: Calls to lose or repeat (see :class:`CallFaults`); none by default.
    """

    def __init__(
        self,
        *,
        signing_key: str | None,
        event_key: str = "test-event-key",
        backoff_seconds: float = 0.05,
        concurrency: int = 1,
        faults: CallFaults | None = None,
    ) -> None:
        self.signing_key = signing_key
        self.event_key = event_key
        self.backoff_seconds = backoff_seconds
        self.concurrency = concurrency
        self.faults = faults or CallFaults()
        self._fault_rng = random.Random(self.faults.seed)
        self.url = ""
        self.functions: dict[str, Function] = {}
        self.events: list[dict[str, Any]] = []
        self.runs: list[Run] = []
        self.registrations: list[dict[str, Any]] = []
        #: How long an event id makes a second event with it a duplicate (a test may shorten it).
        self.event_id_window_seconds = EVENT_ID_WINDOW_SECONDS
        #: When each event id was first seen (monotonic seconds).
        self._seen_event_ids: dict[str, float] = {}
        self._queue: list[tuple[float, int, str, str | None]] = []
        self._runs_by_id: dict[str, Run] = {}
        #: The runs not ended yet, the only ones an event can cancel or resume.
        self._live: dict[str, Run] = {}
        self._order = itertools.count()
        #: Events a rate limit or a debounce dropped: (function id, event).
        self.dropped_events: list[tuple[str, dict[str, Any]]] = []
        self._starts: dict[tuple[str, str, str], list[float]] = {}
        self._debouncing: dict[tuple[str, str], Run] = {}
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._stack = ExitStack()
        self._cron_seen: dict[tuple[str, str], datetime] = {}
        #: Runs being called now.
        self._calling: set[str] = set()
        #: The timers of the runs' ``timeouts``.
        self._timers: list[threading.Timer] = []
        self._http = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=2 * concurrency + 2))

    # Life.

    def start(self) -> InngestServer:
        app = Starlette(
            routes=[
                Route("/fn/register", self._register, methods=["POST"]),
                Route("/e/{key}", self._ingest, methods=["POST"]),
                Route("/v1/runs/{run_id}", self._cancel_run, methods=["DELETE"]),
            ]
        )
        # Its request lines are Inngest's logs, not the app's (the event key is in the path).
        self.url = self._stack.enter_context(serve(app, access_log=False))
        for target in [*[self._execute_forever] * self.concurrency, self._cron_forever]:
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._stack.callback(thread.join, 5)
        self._stack.callback(self._stop.set)
        self._stack.callback(self._wake)
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
        self._wake()
        self._stack.close()
        self._http.close()

    @property
    def dev(self) -> bool:
        return self.signing_key is None

    # What tests do.

    def sync(self, app_url: str, *, in_band: bool = False) -> httpx.Response:
        """Ask the app at ``app_url`` to sync, signed (as Inngest signs it) outside dev mode.

        Out of band (the default) the app registers itself by POSTing its functions
        to ``/fn/register``. In band (cloud mode only) the PUT's signed body names the
        URL Inngest reached, and the app's signed answer lists its functions, which
        are registered from it.
        """
        headers = {"x-inngest-server-kind": "dev" if self.dev else "cloud"}
        body = b""
        if in_band:
            body = json.dumps({"url": app_url}).encode()
            headers |= {"content-type": "application/json", "x-inngest-sync-kind": "in_band"}
        if not self.dev:
            headers["x-inngest-signature"] = self.sign(body)
        response = self._http.put(app_url, content=body, headers=headers)
        if in_band and response.status_code == 200 and self._response_signed(response):
            self._register_functions(response.json())
        return response

    def send(self, events: list[dict[str, Any]]) -> list[str]:
        """Send events as the SDK would."""
        response = self._http.post(f"{self.url}/e/{self.event_key}", json=events)
        response.raise_for_status()
        ids: list[str] = response.json()["ids"]
        return ids

    def fire_cron(self, function_id: str) -> Run:
        """Start a run of a cron-triggered function now, as its schedule would."""
        function = self.functions[function_id]
        (cron,) = [trigger["cron"] for trigger in function.triggers if "cron" in trigger]
        return self._start_run(function, self._scheduled_event(cron))

    def cancel_run(self, run_id: str) -> bool:
        """Cancel a run as Inngest's dashboard or REST API does; ``False`` if it had ended."""
        return self._finish(self._runs_by_id[run_id], "cancelled", error=CANCELLED_ERROR)

    def runs_of(self, function_id: str) -> list[Run]:
        with self._lock:
            return [run for run in self.runs if run.function.id == function_id]

    def wait_for_runs(self, count: int, timeout: float = 20.0) -> list[Run]:
        """Wait until ``count`` runs exist and all of them have ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                runs = list(self.runs)
            if len(runs) >= count and all(run.done.is_set() for run in runs):
                return runs
            time.sleep(0.02)
        raise AssertionError(f"{count} ended runs expected within {timeout} s; have {self.runs!r}")

    def in_flight(self) -> int:
        """Calls being made now."""
        with self._lock:
            return len(self._calling)

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until every run has ended and nothing is scheduled."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                idle = not self._queue and not self._calling and all(run.done.is_set() for run in self.runs)
            if idle:
                return
            time.sleep(0.02)
        raise AssertionError(f"the emulator was still busy after {timeout} s")

    # The API the SDK calls.

    async def _register(self, request: Request) -> JSONResponse:
        if not self.dev and not self._bearer_ok(request.headers.get("authorization", "")):
            return _answer({"error": "unauthorized"}, 401)
        self._register_functions(json.loads(await request.body()))
        return _answer({"ok": True, "modified": True})

    def _register_functions(self, body: dict[str, Any]) -> None:
        """Take an app's registration (or in-band answer): its functions, their triggers and URLs."""
        self.registrations.append(body)
        with self._lock:
            for config in body["functions"]:
                step = config["steps"]["step"]
                retries = step.get("retries", {}).get("attempts", 4)
                self.functions[config["id"]] = Function(
                    id=config["id"],
                    name=config.get("name", config["id"]),
                    triggers=config["triggers"],
                    url=step["runtime"]["url"],
                    retries=retries,
                    cancel=config.get("cancel") or [],
                    timeouts={
                        limit: _sleep_seconds({"opts": {"duration": value}})
                        for limit, value in (config.get("timeouts") or {}).items()
                        if value
                    },
                    flow={name: config[name] for name in _FLOW_OPTIONS if config.get(name)},
                )

    async def _ingest(self, request: Request) -> JSONResponse:
        if request.path_params["key"] != self.event_key:
            return _answer({"error": "Event key not found"}, 401)
        try:
            payload = json.loads(await request.body())
        except ValueError:
            return _answer({"error": "malformed JSON"}, 400)
        events = payload if isinstance(payload, list) else [payload]
        ids = []
        for event in events:
            if not isinstance(event, dict) or not isinstance(event.get("name"), str):
                return _answer({"error": "an event needs a name"}, 400)
            ids.append(self._accept(event))
        return _answer({"ids": ids, "status": 200})

    async def _cancel_run(self, request: Request) -> JSONResponse:
        """``DELETE /v1/runs/<run id>``: Inngest's REST API, with the signing key's bearer."""
        if not self.dev and not self._bearer_ok(request.headers.get("authorization", "")):
            return _answer({"error": "unauthorized"}, 401)
        run_id = request.path_params["run_id"]
        if run_id not in self._runs_by_id:
            return _answer({"error": "run not found"}, 404)
        self.cancel_run(run_id)
        return _answer({"data": {"run_id": run_id, "status": self._runs_by_id[run_id].status}})

    # Events and runs.

    def _accept(self, event: dict[str, Any]) -> str:
        event = {"data": {}, "ts": int(time.time() * 1000), **event}
        event_id = event.get("id") or str(uuid.uuid4())
        with self._lock:
            seen = self._seen_event_ids.get(event_id)
            if seen is not None and time.monotonic() - seen < self.event_id_window_seconds:
                return event_id  # a duplicate: accepted, runs nothing
            self._seen_event_ids[event_id] = time.monotonic()
            event["id"] = event_id
            self.events.append(event)
            matching = [
                function
                for function in self.functions.values()
                if any(trigger.get("event") == event["name"] for trigger in function.triggers)
            ]
            cancels = any(
                spec.get("event") == event["name"]
                for function in self.functions.values()
                for spec in function.cancel
            )
            cancelled = [
                run
                for run in (self._live.values() if cancels else ())
                if not run.done.is_set()
                and any(
                    spec.get("event") == event["name"] and _matches(spec.get("if"), run.event, event)
                    for spec in run.function.cancel
                )
            ]
            awaited = [
                run
                for run in self._live.values()
                if not run.done.is_set()
                and run.waiting is not None
                and run.waiting[1] == event["name"]
                and _matches(run.waiting[2], run.event, event)
            ]
        for run in cancelled:  # no call of it is made again (``_call`` skips finished runs)
            self._finish(run, "cancelled", error=CANCELLED_ERROR)
        for run in awaited:
            with self._lock:
                self._resolve_wait(run, event)
            self._schedule(run, None, 0.0)
        for function in matching:
            self._start_under_flow_control(function, event)
        return event_id

    def _start_under_flow_control(self, function: Function, event: dict[str, Any]) -> None:
        """Start a run as Inngest does under the function's rate limit, debounce and throttle.

        A rate limit drops the event (no run); a debounce keeps one waiting run per key,
        given the latest event and started a period after it; a throttle delays starts
        beyond its limit per period. Concurrency is applied when runs are called.
        """
        flow, now = function.flow, time.monotonic()
        with self._lock:
            rate = flow.get("rateLimit")
            if rate is not None:
                starts = self._window(function, "rate", rate, event, now)
                if len(starts) >= int(rate["limit"]):
                    self.dropped_events.append((function.id, event))
                    return
                starts.append(now)
            debounce = flow.get("debounce")
            if debounce is not None:
                key = (function.id, inngest_concurrency.key_value(debounce.get("key"), event))
                waiting = self._debouncing.get(key)
                due = now + _duration_seconds(debounce["period"])
                if waiting is not None and waiting.started is None and not waiting.done.is_set():
                    self.dropped_events.append((function.id, waiting.event))
                    waiting.event, waiting.not_before = event, due
                    return
        run = self._start_run(function, event, not_before=self._throttled_start(function, event, now))
        if debounce is not None:
            with self._lock:
                run.not_before = due
                self._debouncing[key] = run

    def _window(
        self, function: Function, kind: str, limit: dict[str, Any], event: dict[str, Any], now: float
    ) -> list[float]:
        """The starts counted in the sliding window of a rate limit or throttle (oldest dropped)."""
        period = _duration_seconds(limit["period"])
        starts = self._starts.setdefault(
            (function.id, kind, inngest_concurrency.key_value(limit.get("key"), event)), []
        )
        starts[:] = [start for start in starts if start > now - period]
        return starts

    def _throttled_start(self, function: Function, event: dict[str, Any], now: float) -> float:
        throttle = function.flow.get("throttle")
        if throttle is None:
            return 0.0
        with self._lock:
            period = _duration_seconds(throttle["period"])
            starts = self._window(function, "throttle", throttle, event, now - 3600)
            # The next start is the first moment the window holds fewer than the limit.
            at = now
            while len([start for start in starts if start > at - period]) >= int(throttle["limit"]):
                at = min(start for start in starts if start > at - period) + period
            starts.append(at)
            return at

    def _start_run(self, function: Function, event: dict[str, Any], *, not_before: float = 0.0) -> Run:
        run = Run(id=str(uuid.uuid4()), function=function, event=event, not_before=not_before)
        with self._lock:
            self.runs.append(run)
            self._live[run.id] = run
            self._runs_by_id[run.id] = run
        if "start" in function.timeouts:
            self._time_out(run, "start", function.timeouts["start"])
        self._schedule(run, None, max(not_before - time.monotonic(), 0.0))
        return run

    def _time_out(self, run: Run, limit: str, seconds: float) -> None:
        """Cancel ``run`` in ``seconds`` unless it has started (``start``) or ended by then."""

        def expire() -> None:
            if limit == "start" and run.started is not None:
                return
            self._finish(run, "cancelled", error=CANCELLED_ERROR)

        timer = threading.Timer(seconds, expire)
        timer.daemon = True
        with self._lock:
            self._timers.append(timer)
        timer.start()

    def _scheduled_event(self, cron: str) -> dict[str, Any]:
        return {
            "id": str(uuid.uuid4()),
            "name": SCHEDULED_EVENT,
            "data": {"cron": cron},
            "ts": int(time.time() * 1000),
        }

    def _schedule(self, run: Run, step_id: str | None, delay: float) -> None:
        with self._lock:
            heapq.heappush(self._queue, (time.monotonic() + delay, next(self._order), run.id, step_id))
            self._lock.notify_all()

    def _wake(self) -> None:
        with self._lock:
            self._lock.notify_all()

    def _execute_forever(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if not self._queue:
                    self._lock.wait(0.5)
                    continue
                due, _, run_id, step_id = self._queue[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._lock.wait(wait)
                    continue
                heapq.heappop(self._queue)
                if run_id in self._calling:  # another thread calls this run: after it
                    later = time.monotonic() + 0.01
                    heapq.heappush(self._queue, (later, next(self._order), run_id, step_id))
                    continue
                run = self._runs_by_id[run_id]
                held = self._held_back(run)
                if held is not None:
                    heapq.heappush(self._queue, (held, next(self._order), run_id, step_id))
                    continue
                self._calling.add(run_id)
            try:
                self._call(run, step_id)
            finally:
                with self._lock:
                    self._calling.discard(run_id)
                    self._lock.notify_all()

    def _held_back(self, run: Run) -> float | None:
        """When to look again at a run that may not be called yet (``None``: call it now).

        A run waits for its ``not_before`` (debounce, throttle); a call waits while a
        concurrency limit it counts against is reached by the calls being made (Inngest
        bounds the steps running at once, ``inngest_concurrency``).
        """
        now = time.monotonic()
        if run.started is None and run.not_before > now:
            return run.not_before
        wanted = _slots(run)
        if wanted and inngest_concurrency.full(
            wanted, (_slots(self._runs_by_id[other]) for other in self._calling)
        ):
            return now + 0.01  # after a call ends
        return None

    def _cron_forever(self) -> None:
        while not self._stop.wait(0.2):
            now = datetime.now(UTC).replace(microsecond=0)
            with self._lock:
                crons = [
                    (function, trigger["cron"])
                    for function in self.functions.values()
                    for trigger in function.triggers
                    if "cron" in trigger
                ]
            for function, cron in crons:
                key = (function.id, cron)
                last = self._cron_seen.setdefault(key, now)
                slot = next(CronSim(cron, last))
                if slot <= now:
                    self._cron_seen[key] = slot
                    self._start_run(function, self._scheduled_event(cron))

    # The call loop.

    def _call(self, run: Run, step_id: str | None) -> None:
        if run.done.is_set():
            return
        if step_id is not None and step_id.startswith(WAIT_TIMEOUT):
            waited = step_id[len(WAIT_TIMEOUT) :]
            if run.waiting is None or run.waiting[0] != waited:
                return  # an event ended the wait first
            self._resolve_wait(run, None)
            step_id = None
        if run.sleeping is not None:
            run.memo[run.sleeping] = None
            run.stack.append(run.sleeping)
            run.sleeping = None
        function = run.function
        if run.started is None:
            run.started = time.monotonic()
            if "finish" in function.timeouts:
                self._time_out(run, "finish", function.timeouts["finish"])
        body = {
            "event": run.event,
            "events": [run.event],
            "steps": run.memo,
            "ctx": {
                "run_id": run.id,
                "attempt": run.attempt,
                "disable_immediate_execution": run.disable_immediate_execution,
                "use_api": False,
                "max_attempts": function.max_attempts,
                "stack": {"stack": run.stack, "current": len(run.stack)},
            },
            "use_api": False,
        }
        raw = json.dumps(body).encode()
        headers = {
            "content-type": "application/json",
            "x-inngest-server-kind": "dev" if self.dev else "cloud",
        }
        if not self.dev:
            headers["x-inngest-signature"] = self.sign(raw)
        url = _with_step(function.url, step_id or "step")
        fault = self._draw_fault(function.id)
        try:
            if fault == "dropped-request":
                raise httpx.ConnectError("the emulator lost the call before the app got it")
            if fault == "repeated":  # a second delivery of the same call, at the same time
                twin = threading.Thread(target=self._post_quietly, args=(url, raw, headers))
                twin.start()
                response = self._http.post(url, content=raw, headers=headers)
                twin.join()
            else:
                response = self._http.post(url, content=raw, headers=headers)
            if fault == "dropped-answer":
                raise httpx.ReadError("the emulator lost the app's answer")
        except httpx.HTTPError as exc:
            run.calls.append(Call(step_id or "step", run.attempt, 0, str(exc), {}, fault))
            if run.status != "running":
                return
            self._retry_or_fail(run, {"name": type(exc).__name__, "message": str(exc)}, None)
            return
        answer = _json_or_text(response)
        run.calls.append(
            Call(step_id or "step", run.attempt, response.status_code, answer, dict(response.headers), fault)
        )
        if run.status != "running":  # cancelled while the call ran: Inngest drops its answer
            return
        if not self.dev and not self._response_signed(response):
            self._retry_or_fail(run, {"name": "SignatureError", "message": "bad response signature"}, None)
            return
        if response.status_code == 200:
            self._finish(run, "completed", output=answer)
        elif response.status_code == 206:
            self._apply(run, answer)
        elif response.headers.get("x-inngest-no-retry") == "true":
            self._finish(run, "failed", error=answer)
        else:
            self._retry_or_fail(run, answer, response.headers.get("retry-after"))

    def _draw_fault(self, function_id: str) -> str:
        faults = self.faults
        if faults.functions and function_id not in faults.functions:
            return ""
        with self._lock:
            draw = self._fault_rng.random()
        for name, share in (
            ("dropped-request", faults.drop_request),
            ("dropped-answer", faults.drop_answer),
            ("repeated", faults.repeat),
        ):
            if draw < share:
                return name
            draw -= share
        return ""

    def _post_quietly(self, url: str, raw: bytes, headers: dict[str, str]) -> None:
        try:
            self._http.post(url, content=raw, headers=headers)
        except httpx.HTTPError:
            pass  # the twin's answer is not the one acted on

    def _apply(self, run: Run, operations: list[dict[str, Any]]) -> None:
        if len(operations) > 1:
            run.disable_immediate_execution = True
        for operation in operations:
            step_id, opcode = operation["id"], operation["op"]
            if opcode == "StepRun":
                run.memo[step_id] = {"data": operation.get("data")}
                run.stack.append(step_id)
                run.attempt = 0
                self._schedule(run, None, 0.0)
            elif opcode == "StepError":
                if run.attempt + 1 < run.function.max_attempts:
                    run.attempt += 1
                    self._schedule(run, step_id, self._backoff(run.attempt))
                else:
                    self._memoise_error(run, step_id, operation["error"])
            elif opcode == "StepFailed":
                self._memoise_error(run, step_id, operation["error"])
            elif opcode == "Sleep":
                run.sleeping = step_id
                self._schedule(run, None, _sleep_seconds(operation))
            elif opcode == "WaitForEvent":
                opts = operation.get("opts") or {}
                run.waiting = (step_id, operation["name"], opts.get("if"))
                timeout = _sleep_seconds({"opts": {"duration": opts.get("timeout")}})
                self._schedule(run, f"{WAIT_TIMEOUT}{step_id}", timeout)
            elif opcode == "StepPlanned":
                self._schedule(run, step_id, 0.0)
            else:
                self._finish(run, "failed", error={"name": "UnsupportedOp", "message": opcode})

    def _resolve_wait(self, run: Run, event: dict[str, Any] | None) -> None:
        """End a ``WaitForEvent`` step: the event (unwrapped, as Inngest sends it) or ``None`` on timeout."""
        assert run.waiting is not None
        step_id = run.waiting[0]
        run.memo[step_id] = event
        run.stack.append(step_id)
        run.waiting = None

    def _memoise_error(self, run: Run, step_id: str, error: Any) -> None:
        run.memo[step_id] = {"error": error}
        run.stack.append(step_id)
        run.attempt = 0
        self._schedule(run, None, 0.0)

    def _retry_or_fail(self, run: Run, error: Any, retry_after: str | None) -> None:
        if run.attempt + 1 >= run.function.max_attempts:
            self._finish(run, "failed", error=error)
            return
        run.attempt += 1
        delay = _retry_after_seconds(retry_after) if retry_after else self._backoff(run.attempt)
        self._schedule(run, None, delay)

    def _finish(self, run: Run, status: str, *, output: Any = None, error: Any = None) -> bool:
        """End ``run``; ``False`` (and nothing changes) if it had ended already."""
        with self._lock:
            if run.status != "running":  # e.g. cancelled while its last call ran
                return False
            run.status, run.output, run.error = status, output, error
        # The system event's runs start before this one ends, so a test that waits for the
        # runs to end waits for theirs too. A handler's own run sends none: no loop.
        system_event = {"failed": FAILED_EVENT, "cancelled": CANCELLED_EVENT}.get(status)
        if system_event is not None and run.event.get("name") not in _SYSTEM_EVENTS:
            if not isinstance(error, dict):
                error = {"name": "Error", "message": str(error)}
            self._accept(
                {
                    "id": run.id,
                    "name": system_event,
                    "data": {
                        "error": error,
                        "event": run.event,
                        "function_id": run.function.id,
                        "run_id": run.id,
                    },
                }
            )
        with self._lock:
            self._live.pop(run.id, None)
        run.done.set()
        return True

    def _backoff(self, attempt: int) -> float:
        return float(self.backoff_seconds * 2 ** (attempt - 1))

    # Signatures.

    def sign(self, raw: bytes, at: int | None = None, key: str | None = None) -> str:
        """``t=<seconds>&s=<HMAC-SHA256(key without prefix, JCS(body) + t)>``."""
        stamp = str(round(time.time()) if at is None else at)
        canonical = jcs.canonicalize(json.loads(raw)) if raw else b""
        mac = hmac.new(_key_text(key or self.signing_key or ""), canonical, hashlib.sha256)
        mac.update(stamp.encode())
        return f"t={stamp}&s={mac.hexdigest()}"

    def _response_signed(self, response: httpx.Response) -> bool:
        header = response.headers.get("x-inngest-signature")
        if not header or self.signing_key is None:
            return False
        fields = urllib.parse.parse_qs(header)
        stamp, signature = fields.get("t", [""])[0], fields.get("s", [""])[0]
        mac = hmac.new(_key_text(self.signing_key), response.content, hashlib.sha256)
        mac.update(stamp.encode())
        return hmac.compare_digest(mac.hexdigest(), signature)

    def _bearer_ok(self, authorization: str) -> bool:
        assert self.signing_key is not None
        prefix = re.match(r"^signkey-\w+-", self.signing_key)
        digest = hashlib.sha256(bytes.fromhex(_key_text(self.signing_key).decode())).hexdigest()
        accepted = {f"Bearer {digest}"}
        if prefix:
            accepted.add(f"Bearer {prefix.group(0)}{digest}")
        return authorization in accepted


def _matches(expression: str | None, trigger: dict[str, Any], incoming: dict[str, Any]) -> bool:
    """A cancel's ``if``: ``==`` between ``event.…`` (the run's event), ``async.…`` (the new one), "strings".

    Clauses may be joined by ``&&``: the part of Inngest's CEL that cancelling by id
    needs; anything else is refused loudly.
    """
    if not expression:
        return True
    scope = {"event": trigger, "async": incoming}

    def value(path: str) -> Any:
        if path.strip().startswith('"'):  # a string literal
            return json.loads(path)
        root, *keys = path.strip().split(".")
        if root not in scope:
            raise ValueError(f"the emulator reads only event.… and async.… in cancel expressions: {path!r}")
        current: Any = scope[root]
        for key in keys:
            current = current.get(key) if isinstance(current, dict) else None
        return current

    for clause in expression.split("&&"):
        left, equals, right = clause.partition("==")
        if not equals:
            raise ValueError(f"the emulator understands only == in cancel expressions: {clause!r}")
        if value(left) != value(right):
            return False
    return True


#: The function options whose flow control the emulator applies.
_FLOW_OPTIONS = ("concurrency", "throttle", "rateLimit", "debounce")


def _slots(run: Run) -> list[tuple[str, int]]:
    """The concurrency slots a call of ``run`` takes."""
    return inngest_concurrency.slots(run.function.id, run.function.flow.get("concurrency") or [], run.event)


def _duration_seconds(value: Any) -> float:
    """A period as the SDK syncs it: a time string (``"10s"``, ``"1m30s"``) or milliseconds."""
    return _sleep_seconds({"opts": {"duration": value}})


def _answer(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=_CLOSE)


def _key_text(key: str) -> bytes:
    return re.sub(r"^signkey-\w+-", "", key).encode()


def _with_step(url: str, step_id: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query["stepId"] = step_id
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _sleep_seconds(operation: dict[str, Any]) -> float:
    """The spec puts a time string in ``opts.duration``; the Python SDK puts the ISO end in ``name``."""
    duration = (operation.get("opts") or {}).get("duration")
    if isinstance(duration, (int, float)):
        return float(duration) / 1000
    if isinstance(duration, str) and _DURATION.findall(duration):
        return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION.findall(duration))
    until = duration if isinstance(duration, str) else operation.get("name")
    if isinstance(until, str):
        return _seconds_until(until)
    return 0.0


def _seconds_until(iso: str) -> float:
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((moment - datetime.now(UTC)).total_seconds(), 0.0)


def _retry_after_seconds(value: str) -> float:
    if value.isdigit():
        return float(value)
    return max(
        (datetime.fromisoformat(value.replace("Z", "+00:00")) - datetime.now(UTC)).total_seconds(), 0.0
    )


def runs_by_status(runs: list[Run]) -> Iterator[tuple[str, str]]:
    """``(function id, status)`` of each run, for short assertions."""
    for run in runs:
        yield run.function.id, run.status
