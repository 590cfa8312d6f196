"""The Lambda service: execution environments, concurrency, asynchronous invocation and billing.

Rules modelled, from the AWS Lambda Developer Guide unless noted:
- A new execution environment runs its Init phase first (a cold start, at most 10 s). An idle
  environment is reused warm, keeping module state, until it is reclaimed ("Lambda execution
  environment"). AWS does not publish how long idle environments live.
- An invocation that reaches its timeout is stopped and counted as a function error, and its
  environment is reset, so the next invocation there starts cold (same page).
- Duration is billed in 1 ms steps from the start of the handler until it returns or is stopped,
  plus the Init phase since August 2025 (Lambda pricing).
- Concurrency above the limit is throttled (429) ("Lambda scaling behavior").
- Asynchronous invocations wait in an internal queue ("Asynchronous invocation"). A function
  error or timeout is retried up to twice, about 1 and 2 minutes later. A throttled event is
  retried with backoff from 1 s up to 5 minutes. An event older than the maximum event age is
  dropped.
- Recursive loop detection drops the 17th invocation of one chain of requests unless the
  function allows recursion ("Lambda recursive loop detection").
"""

from __future__ import annotations

import enum
import itertools
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Generator

import numpy as np
import simpy

from sim import limits
from sim.distributions import Sampler
from sim.drain.effects import DrainOutcome, DrainProgram
from sim.scenario import LambdaSettings

logger = logging.getLogger(__name__)


class Trigger(str, enum.Enum):
    """Cause of an invocation."""

    START = "start"  # the first invocation of a recursive chain
    TIMER = "timer"  # a scheduled rule's fire
    SELF = "self"  # the function invoked itself
    RETRY = "retry"  # Lambda's asynchronous retry of a failed invocation
    WATCHDOG = "watchdog"  # a watchdog restarted a dead recursive chain


class EndReason(str, enum.Enum):
    """Way an invocation ended."""

    IDLE_AFTER_BASELINE = "idle_after_baseline"
    NEAR_TIMEOUT = "near_timeout"
    SELF_INVOKED = "self_invoked"
    SELF_INVOKE_FAILED = "self_invoke_failed"
    TIMEOUT = "timeout"  # stopped by Lambda at the function timeout
    ERROR = "error"  # raised an unhandled error
    RUN_ENDED = "run_ended"  # still running when the simulation ended


class DropReason(str, enum.Enum):
    """Reason an asynchronous event was discarded without an invocation."""

    RECURSIVE_LOOP = "recursive_loop"
    EVENT_AGE = "event_age"
    RETRIES_EXHAUSTED = "retries_exhausted"


FAILED_REASONS = frozenset({EndReason.TIMEOUT, EndReason.ERROR})


def next_throttle_backoff_s(previous_s: float) -> float:
    """Return the wait before the next try of a throttled event: 1 s, then doubling up to 5 min."""
    return min(previous_s * 2 or limits.THROTTLE_BACKOFF_INITIAL_S, limits.THROTTLE_BACKOFF_MAX_S)


def too_old(now_s: float, delay_s: float, first_queued_at_s: float, max_event_age_s: float) -> bool:
    """Tell whether an event retried ``delay_s`` from now would pass the maximum event age."""
    return now_s + delay_s - first_queued_at_s > max_event_age_s


@dataclass(slots=True)
class AsyncEvent:
    """One event in Lambda's asynchronous invocation queue."""

    trigger: Trigger
    first_queued_at_s: float
    chain_id: int = -1
    # Position in the chain of requests that recursive loop detection counts, from 1.
    chain_depth: int = 1
    attempt: int = 0
    throttle_backoff_s: float = 0.0


@dataclass(slots=True)
class ExecutionEnvironment:
    environment_id: int
    state: dict[str, Any]
    idle_since_at_s: float = 0.0
    reclaim_after_s: float = math.inf


@dataclass(slots=True)
class Invocation:
    """One run of the handler, from dispatch to its end."""

    invocation_id: int
    event: AsyncEvent
    start_at_s: float
    cold: bool = False
    init_s: float = 0.0
    handler_start_at_s: float = math.nan
    deadline_at_s: float = math.nan
    received: int = 0
    published: int = 0


class SimulatedContext:
    """The Lambda context object as the drain programs see it, on simulated time."""

    __slots__ = ("_env", "_deadline_at_s")

    def __init__(self, env: simpy.Environment, deadline_at_s: float) -> None:
        self._env = env
        self._deadline_at_s = deadline_at_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline_at_s - self._env.now) * 1000))

    def clock_s(self) -> float:
        return self._env.now


ProgramFactory = Callable[[SimulatedContext, dict[str, Any]], DrainProgram]
# Maps an effect request type to the generator function that carries it out.
EffectHandlers = Callable[[type], Callable[[Any, Invocation], Generator[simpy.Event, Any, Any]]]


@dataclass
class LambdaRecords:
    """Everything a function did during a run, for the results."""

    invocations: list[tuple[Any, ...]] = field(default_factory=list)
    concurrency: list[tuple[float, int]] = field(default_factory=list)
    throttles: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    # Events waiting in the asynchronous queue (dispatch delay, retry delay or throttle backoff).
    pending_events: int = 0
    async_duplicates: int = 0


INVOCATION_COLUMNS = (
    "invocation_id",
    "trigger",
    "chain_id",
    "chain_depth",
    "attempt",
    "start_at_s",
    "end_at_s",
    "cold",
    "init_ms",
    "end_reason",
    "billed_ms",
    "messages_received",
    "messages_published",
)


class LambdaFunction:
    """One function with its environments, its asynchronous queue and its concurrency limit."""

    def __init__(
        self,
        env: simpy.Environment,
        settings: LambdaSettings,
        timeout_s: float,
        allow_recursion: bool,
        program_factory: ProgramFactory,
        rngs: dict[str, np.random.Generator],
    ) -> None:
        self.env = env
        self.settings = settings
        self.timeout_s = timeout_s
        self.allow_recursion = allow_recursion
        self.effect_handlers: EffectHandlers | None = None
        self.records = LambdaRecords()

        self._program_factory = program_factory
        self._rng = rngs["lambda"]
        self._init = Sampler(settings.init_duration_ms, rngs["init"], 0.001, limits.MAX_INIT_DURATION_S)
        self._idle_reclaim = Sampler(settings.idle_reclaim_s, rngs["idle"])
        self._dispatch_delay = Sampler(settings.async_dispatch_delay_ms, rngs["dispatch"], 0.001)

        self._idle: list[ExecutionEnvironment] = []
        self._environment_ids = itertools.count()
        self._invocation_ids = itertools.count()
        self._chain_ids = itertools.count()
        self._chain_activity: Counter[int] = Counter()
        self._running: dict[int, Invocation] = {}

    # -----------------------------------------------------------------------------------------
    # Asynchronous invocation

    @property
    def concurrency(self) -> int:
        return len(self._running)

    def invoke_async(self, event: AsyncEvent) -> None:
        """Accept an asynchronous Invoke (HTTP 202) and queue the event for dispatch."""
        self._queue(event, self._dispatch_delay.sample())
        duplicate_probability = self.settings.async_duplicate_probability
        if duplicate_probability > 0 and self._rng.random() < duplicate_probability:
            # The asynchronous queue is eventually consistent and may deliver an event twice.
            self.records.async_duplicates += 1
            copy = AsyncEvent(event.trigger, event.first_queued_at_s, event.chain_id, event.chain_depth, event.attempt)
            self._queue(copy, self._dispatch_delay.sample())

    def start_chain(self, trigger: Trigger) -> int:
        """Start a new recursive chain with a first asynchronous invocation; return its id."""
        chain_id = next(self._chain_ids)
        self.invoke_async(AsyncEvent(trigger, self.env.now, chain_id=chain_id))
        return chain_id

    def chain_alive(self, chain_id: int) -> bool:
        """Tell whether a chain has an event queued or an invocation running."""
        return self._chain_activity[chain_id] > 0

    def _queue(self, event: AsyncEvent, delay_s: float) -> None:
        if event.chain_id >= 0:
            self._chain_activity[event.chain_id] += 1
        self.records.pending_events += 1
        timer = self.env.timeout(delay_s)
        timer.callbacks.append(lambda _timer: self._dispatch(event))

    def _dispatch(self, event: AsyncEvent) -> None:
        now = self.env.now
        if not self.allow_recursion and event.chain_depth > limits.RECURSIVE_LOOP_MAX_INVOCATIONS:
            self._drop(event, DropReason.RECURSIVE_LOOP)
            return

        if self.concurrency >= self.settings.concurrency_limit:
            self.records.throttles += 1
            event.throttle_backoff_s = next_throttle_backoff_s(event.throttle_backoff_s)
            if too_old(now, event.throttle_backoff_s, event.first_queued_at_s, self.settings.max_event_age_s):
                self._drop(event, DropReason.EVENT_AGE)
                return
            logger.debug("throttled %s event; retry in %.1f s", event.trigger.value, event.throttle_backoff_s)
            timer = self.env.timeout(event.throttle_backoff_s)
            timer.callbacks.append(lambda _timer: self._dispatch(event))
            return

        self.records.pending_events -= 1
        self.env.process(self._invoke(event))

    def _drop(self, event: AsyncEvent, reason: DropReason) -> None:
        self.records.pending_events -= 1
        self.records.dropped[reason.value] += 1
        logger.debug("dropped %s event of chain %d: %s", event.trigger.value, event.chain_id, reason.value)
        self._end_activity(event)

    def _end_activity(self, event: AsyncEvent) -> None:
        if event.chain_id >= 0:
            self._chain_activity[event.chain_id] -= 1

    def _retry_after_failure(self, event: AsyncEvent) -> None:
        if event.attempt >= self.settings.max_retry_attempts:
            self.records.dropped[DropReason.RETRIES_EXHAUSTED.value] += 1
            return
        delay_s = limits.FUNCTION_ERROR_RETRY_DELAYS_S[event.attempt]
        if too_old(self.env.now, delay_s, event.first_queued_at_s, self.settings.max_event_age_s):
            self.records.dropped[DropReason.EVENT_AGE.value] += 1
            return
        retry = AsyncEvent(
            Trigger.RETRY, event.first_queued_at_s, event.chain_id, event.chain_depth, event.attempt + 1
        )
        self._queue(retry, delay_s)

    # -----------------------------------------------------------------------------------------
    # Invocations

    def _invoke(self, event: AsyncEvent) -> Generator[simpy.Event, Any, None]:
        env = self.env
        invocation = Invocation(next(self._invocation_ids), event, env.now)
        self._running[invocation.invocation_id] = invocation
        self._record_concurrency()

        environment = self._take_warm_environment()
        if environment is None:
            invocation.cold = True
            invocation.init_s = self._init.sample()
            environment = ExecutionEnvironment(next(self._environment_ids), {})
            yield env.timeout(invocation.init_s)

        invocation.handler_start_at_s = env.now
        invocation.deadline_at_s = env.now + self.timeout_s
        stop_at_s = invocation.deadline_at_s
        fails = self.settings.failure_probability > 0 and self._rng.random() < self.settings.failure_probability
        if fails:
            # The error strikes at a uniformly random moment of the allowed run time; a program
            # that returns earlier raises at its return instead.
            stop_at_s = env.now + self._rng.uniform(0.0, self.timeout_s)

        context = SimulatedContext(env, invocation.deadline_at_s)
        program = self._program_factory(context, environment.state)
        handler = env.process(self._drive(program, invocation))
        yield handler | env.timeout(stop_at_s - env.now)

        if handler.triggered:
            outcome: DrainOutcome = handler.value
            reason = EndReason.ERROR if fails else EndReason(outcome.reason.value)
        else:
            handler.interrupt()
            reason = EndReason.ERROR if fails and stop_at_s < invocation.deadline_at_s else EndReason.TIMEOUT

        self._finish(invocation, environment, reason)

    def _drive(self, program: DrainProgram, invocation: Invocation) -> Generator[simpy.Event, Any, Any]:
        """Run a drain program, carrying out each effect it yields, until it returns or is stopped."""
        handler_for = self.effect_handlers
        assert handler_for is not None, "effect_handlers must be set before the first invocation"
        try:
            request = next(program)
            while True:
                result = yield from handler_for(type(request))(request, invocation)
                request = program.send(result)
        except StopIteration as stop:
            return stop.value
        except simpy.Interrupt:
            program.close()
            return None

    def _finish(self, invocation: Invocation, environment: ExecutionEnvironment, reason: EndReason) -> None:
        now = self.env.now
        del self._running[invocation.invocation_id]
        self._record_concurrency()
        self._record_invocation(invocation, now, reason)

        if reason is EndReason.TIMEOUT:
            logger.debug("invocation %d timed out; its environment is reset", invocation.invocation_id)
        else:
            environment.idle_since_at_s = now
            environment.reclaim_after_s = self._idle_reclaim.sample()
            self._idle.append(environment)

        if reason in FAILED_REASONS:
            self._retry_after_failure(invocation.event)
        self._end_activity(invocation.event)

    def _take_warm_environment(self) -> ExecutionEnvironment | None:
        """Reuse the most recently used idle environment that has not been reclaimed."""
        now = self.env.now
        while self._idle:
            environment = self._idle.pop()
            if now - environment.idle_since_at_s < environment.reclaim_after_s:
                return environment
        return None

    def _record_concurrency(self) -> None:
        self.records.concurrency.append((self.env.now, len(self._running)))

    def _record_invocation(self, invocation: Invocation, end_at_s: float, reason: EndReason) -> None:
        handler_s = 0.0
        if not math.isnan(invocation.handler_start_at_s):
            handler_s = end_at_s - invocation.handler_start_at_s
        billed_ms = _ceil_ms(handler_s)
        if invocation.cold and self.settings.bill_init:
            # An invocation still in its Init phase at the end of the run is billed up to then.
            billed_ms += _ceil_ms(min(invocation.init_s, end_at_s - invocation.start_at_s))
        event = invocation.event
        self.records.invocations.append(
            (
                invocation.invocation_id,
                event.trigger.value,
                event.chain_id,
                event.chain_depth,
                event.attempt,
                invocation.start_at_s,
                end_at_s,
                invocation.cold,
                invocation.init_s * 1000.0,
                reason.value,
                billed_ms,
                invocation.received,
                invocation.published,
            )
        )

    def finish_run(self, end_at_s: float) -> None:
        """Record the invocations still running when the simulation stops."""
        for invocation in list(self._running.values()):
            self._record_invocation(invocation, end_at_s, EndReason.RUN_ENDED)


def _ceil_ms(duration_s: float) -> int:
    # Lambda rounds billed duration up to the next millisecond; the small tolerance keeps float
    # noise (0.1 s stored as 0.1000000001) from adding a whole millisecond.
    return max(0, math.ceil(duration_s * 1000.0 - 1e-6)) * limits.BILLING_GRANULARITY_MS
