"""The drain programs driven by scripted effect results, with no simulator.

Each test plays the engine: it reads the request a program yields, checks it, advances a fake
clock and sends back a chosen result. The recorded request sequence is the program's decision
trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pytest

from sim.drain import (
    Delete,
    InvokeSelf,
    Message,
    PollParams,
    Publish,
    PublishOutcome,
    Receive,
    RecursiveParams,
    StopReason,
    TimerParams,
    recursive_drain,
    timer_drain,
)
from sim.drain.timer import ENVIRONMENT_LOADED_AT_KEY

POLL = PollParams(batch_size=10, wait_s=3, visibility_timeout_s=None, safety_margin_s=2.0)


@dataclass
class FakeContext:
    """A Lambda context on a clock the test moves by hand."""

    now_s: float
    deadline_at_s: float

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline_at_s - self.now_s) * 1000))

    def clock_s(self) -> float:
        return self.now_s


def messages(*ids: int) -> list[Message]:
    return [Message(i, f"receipt-{i}") for i in ids]


Responder = Callable[[Any, FakeContext], Any]


def drive(program, context: FakeContext, respond: Responder, limit: int = 10_000):
    """Run ``program`` to its end; return (decision trace, outcome)."""
    trace: list[Any] = []
    request = next(program)
    for _ in range(limit):
        trace.append(request)
        result = respond(request, context)
        try:
            request = program.send(result)
        except StopIteration as stop:
            return trace, stop.value
    raise AssertionError("program did not stop")


def kinds(trace: list[Any]) -> list[str]:
    return [type(request).__name__ for request in trace]


class Script:
    """Scripted engine: receives return a list of batches in turn, and each effect costs ``step_s`` of fake time."""

    def __init__(self, batches: list[list[Message]], step_s: float = 1.0, empty_wait_s: float = 3.0) -> None:
        self.batches = list(batches)
        self.step_s = step_s
        self.empty_wait_s = empty_wait_s

    def __call__(self, request: Any, context: FakeContext) -> Any:
        if isinstance(request, Receive):
            batch = self.batches.pop(0) if self.batches else []
            context.now_s += self.step_s if batch else self.empty_wait_s
            return batch
        context.now_s += self.step_s
        if isinstance(request, Publish):
            return PublishOutcome(list(request.messages), [])
        if isinstance(request, Delete):
            return []
        if isinstance(request, InvokeSelf):
            return True
        raise AssertionError(f"unexpected request {request!r}")


# ---------------------------------------------------------------------------------------------
# Timer design


def test_timer_polls_through_baseline_when_empty():
    context = FakeContext(now_s=0.0, deadline_at_s=300.0)
    program = timer_drain(TimerParams(POLL, baseline_s=10.0), context, {})

    trace, outcome = drive(program, context, Script([]))

    # Empty polls of 3 s each at 0, 3, 6 and 9 s; the one ending at 12 s is past the baseline.
    assert kinds(trace) == ["Receive"] * 4
    assert outcome.reason is StopReason.IDLE_AFTER_BASELINE
    assert context.now_s == 12.0


def test_timer_receive_request_uses_poll_settings():
    context = FakeContext(now_s=0.0, deadline_at_s=300.0)
    params = TimerParams(PollParams(batch_size=7, wait_s=5, visibility_timeout_s=42), baseline_s=1.0)
    program = timer_drain(params, context, {})

    request = next(program)

    assert request == Receive(max_messages=7, wait_s=5, visibility_timeout_s=42)


def test_timer_publishes_then_deletes_published():
    context = FakeContext(now_s=0.0, deadline_at_s=300.0)
    program = timer_drain(TimerParams(POLL, baseline_s=1.0), context, {})

    trace, outcome = drive(program, context, Script([messages(1, 2)], step_s=0.5))

    assert kinds(trace) == ["Receive", "Publish", "Delete", "Receive"]
    assert trace[1].messages == messages(1, 2)
    assert trace[2].messages == messages(1, 2)
    assert outcome.published == 2
    assert outcome.reason is StopReason.IDLE_AFTER_BASELINE


def test_timer_keeps_draining_after_baseline_while_publishing():
    context = FakeContext(now_s=0.0, deadline_at_s=300.0)
    program = timer_drain(TimerParams(POLL, baseline_s=2.0), context, {})
    batches = [messages(i) for i in range(20)]

    trace, outcome = drive(program, context, Script(batches, step_s=1.0))

    # 20 full cycles run although the baseline ended after the first; the 21st poll is empty.
    assert kinds(trace).count("Publish") == 20
    assert outcome.cycles == 21
    assert outcome.reason is StopReason.IDLE_AFTER_BASELINE


def test_timer_stops_near_timeout_under_load():
    context = FakeContext(now_s=0.0, deadline_at_s=30.0)
    program = timer_drain(TimerParams(POLL, baseline_s=5.0), context, {})
    batches = [messages(i) for i in range(1000)]

    trace, outcome = drive(program, context, Script(batches, step_s=1.0))

    assert outcome.reason is StopReason.NEAR_TIMEOUT
    # No poll starts unless wait_s + margin = 5 s remain, so the last one starts by 25 s.
    remaining_s = context.deadline_at_s - context.now_s
    assert remaining_s <= POLL.wait_s + POLL.safety_margin_s
    assert remaining_s > 0


def test_timer_does_not_delete_failed_publishes():
    context = FakeContext(now_s=0.0, deadline_at_s=300.0)
    program = timer_drain(TimerParams(POLL, baseline_s=1.0), context, {})

    def respond(request, ctx):
        ctx.now_s += 0.5
        if isinstance(request, Receive):
            return messages(1, 2, 3) if ctx.now_s < 1 else []
        if isinstance(request, Publish):
            return PublishOutcome(messages(1, 3), messages(2))
        return []

    trace, outcome = drive(program, context, respond)

    assert trace[2] == Delete(messages(1, 3), True)
    assert outcome.published == 2
    assert outcome.received == 3


def test_timer_stops_when_all_publishes_fail_after_baseline():
    context = FakeContext(now_s=10.0, deadline_at_s=300.0)
    program = timer_drain(TimerParams(POLL, baseline_s=1.0), context, {})

    def respond(request, ctx):
        ctx.now_s += 2.0
        if isinstance(request, Receive):
            return messages(1)
        return PublishOutcome([], messages(1))

    trace, outcome = drive(program, context, respond)

    assert kinds(trace) == ["Receive", "Publish"]
    assert outcome.reason is StopReason.IDLE_AFTER_BASELINE


def test_timer_baseline_from_environment_expires_on_warm_start():
    state: dict[str, Any] = {ENVIRONMENT_LOADED_AT_KEY: 0.0}
    context = FakeContext(now_s=120.0, deadline_at_s=420.0)
    params = TimerParams(POLL, baseline_s=60.0, baseline_from_environment=True)

    trace, outcome = drive(timer_drain(params, context, state), context, Script([]))

    # The environment loaded 120 s ago, so the baseline is over: one empty poll and out.
    assert kinds(trace) == ["Receive"]
    assert outcome.reason is StopReason.IDLE_AFTER_BASELINE


def test_timer_baseline_from_invocation_ignores_environment_age():
    state: dict[str, Any] = {ENVIRONMENT_LOADED_AT_KEY: 0.0}
    context = FakeContext(now_s=120.0, deadline_at_s=420.0)
    params = TimerParams(POLL, baseline_s=60.0, baseline_from_environment=False)

    trace, _ = drive(timer_drain(params, context, state), context, Script([]))

    assert len(trace) == 20  # 60 s of 3 s empty polls


def test_timer_records_environment_load_time_once():
    state: dict[str, Any] = {}
    context = FakeContext(now_s=5.0, deadline_at_s=305.0)
    drive(timer_drain(TimerParams(POLL, baseline_s=1.0), context, state), context, Script([]))
    context2 = FakeContext(now_s=70.0, deadline_at_s=370.0)
    drive(timer_drain(TimerParams(POLL, baseline_s=1.0), context2, state), context2, Script([]))

    assert state[ENVIRONMENT_LOADED_AT_KEY] == 5.0


# ---------------------------------------------------------------------------------------------
# Recursive design


def test_recursive_invokes_itself_near_timeout():
    context = FakeContext(now_s=0.0, deadline_at_s=20.0)
    program = recursive_drain(RecursiveParams(POLL), context, {})

    trace, outcome = drive(program, context, Script([]))

    # Empty polls at 0, 3, 6, 9, 12 s; at 15 s only 5 s remain, not more than wait + margin.
    assert kinds(trace) == ["Receive"] * 5 + ["InvokeSelf"]
    assert outcome.reason is StopReason.SELF_INVOKED
    assert outcome.cycles == 5


def test_recursive_drains_then_hands_over():
    context = FakeContext(now_s=0.0, deadline_at_s=12.0)
    program = recursive_drain(RecursiveParams(POLL), context, {})

    trace, outcome = drive(program, context, Script([messages(1, 2), messages(3)], step_s=1.0))

    assert kinds(trace) == ["Receive", "Publish", "Delete", "Receive", "Publish", "Delete", "Receive", "InvokeSelf"]
    assert outcome.published == 3
    assert outcome.reason is StopReason.SELF_INVOKED


def test_recursive_reports_rejected_self_invoke():
    context = FakeContext(now_s=0.0, deadline_at_s=6.0)
    program = recursive_drain(RecursiveParams(POLL), context, {})

    def respond(request, ctx):
        ctx.now_s += 3.0
        return False if isinstance(request, InvokeSelf) else []

    trace, outcome = drive(program, context, respond)

    assert kinds(trace)[-1] == "InvokeSelf"
    assert outcome.reason is StopReason.SELF_INVOKE_FAILED


@pytest.mark.parametrize("publish_batch, delete_batch", [(True, True), (False, False), (True, False)])
def test_cycle_passes_api_choice(publish_batch, delete_batch):
    poll = PollParams(batch_size=10, wait_s=1, safety_margin_s=1.0, publish_batch=publish_batch, delete_batch=delete_batch)
    context = FakeContext(now_s=0.0, deadline_at_s=100.0)
    program = timer_drain(TimerParams(poll, baseline_s=0.5), context, {})

    trace, _ = drive(program, context, Script([messages(1)], step_s=1.0))

    assert trace[1].batch is publish_batch
    assert trace[2].batch is delete_batch


def test_drain_package_imports_no_simulation_libraries():
    import subprocess
    import sys

    code = (
        "import sys, sim.drain; "
        "bad = [m for m in ('simpy', 'numpy', 'pandas', 'pydantic') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert output.stdout.strip() == ""
