"""Exact traces of the Lambda service model: environments, timeouts, billing and async retries.

The drain programs here are tiny generator functions that yield the real effect requests. A
Receive on an empty queue with a fixed 0 ms latency lasts exactly its wait time, so it serves as
a sleep of known length.
"""

from __future__ import annotations

from typing import Any

import pytest

from sim import limits
from sim.drain.effects import Delete, DrainOutcome, InvokeSelf, Publish, Receive, StopReason
from sim.lambda_service import AsyncEvent, SimulatedContext, Trigger
from sim.scenario import QueueSettings

from conftest import World, build_world, invocation_rows, lambda_settings, make_arrivals, zero_latency

# What the test programs return when they finish on their own.
FINISHED = DrainOutcome(StopReason.NEAR_TIMEOUT, cycles=0, received=0, published=0)


def sleeping_program(seconds: int, log: list[dict[str, Any]] | None = None):
    """Return a program factory whose programs long-poll an empty queue for ``seconds`` in all.

    Each poll waits at most the 20 s maximum, and ``seconds`` = 0 makes one short poll. Each
    program counts its runs in the environment state and, if ``log`` is given, appends the
    handler start time, that count and the state's id.
    """

    def factory(context: SimulatedContext, state: dict[str, Any]):
        state["runs"] = state.get("runs", 0) + 1
        if log is not None:
            entry = {"handler_start_at_s": context.clock_s(), "runs": state["runs"], "state_id": id(state)}
            log.append(entry)
        remaining_s = seconds
        while True:
            wait_s = min(remaining_s, limits.MAX_WAIT_TIME_S)
            yield Receive(10, wait_s)
            remaining_s -= wait_s
            if remaining_s <= 0:
                return FINISHED

    return factory


def invoke_at(world: World, at_s: float, trigger: Trigger = Trigger.TIMER) -> None:
    """Send an asynchronous Invoke to the function at ``at_s``."""

    def send(_event):
        world.function.invoke_async(AsyncEvent(trigger, world.env.now))

    world.env.timeout(at_s - world.env.now).callbacks.append(send)


# ---------------------------------------------------------------------------------------------
# Cold starts and warm reuse


def test_first_invocation_cold_with_init():
    """A new execution environment runs its Init phase before the handler starts."""
    log: list[dict[str, Any]] = []
    world = build_world(sleeping_program(1, log), lambda_=lambda_settings(init_duration_ms=200))
    invoke_at(world, 0.0)

    world.env.run(until=10)

    row = invocation_rows(world.function.records)[0]
    assert row["cold"] is True
    assert row["init_ms"] == pytest.approx(200.0)
    assert row["start_at_s"] == 0.0
    assert log[0]["handler_start_at_s"] == pytest.approx(0.2)
    assert row["end_at_s"] == pytest.approx(1.2)


def test_second_invocation_reuses_warm_environment():
    log: list[dict[str, Any]] = []
    world = build_world(sleeping_program(1, log), lambda_=lambda_settings(init_duration_ms=200))
    invoke_at(world, 0.0)
    invoke_at(world, 5.0)

    world.env.run(until=10)

    rows = invocation_rows(world.function.records)
    assert [row["cold"] for row in rows] == [True, False]
    assert rows[1]["init_ms"] == 0.0
    assert log[1]["handler_start_at_s"] == 5.0
    assert [entry["runs"] for entry in log] == [1, 2]
    assert log[0]["state_id"] == log[1]["state_id"]


def test_idle_environment_past_reclaim_starts_cold():
    """The first invocation ends at 1.2 s, so at 11.3 s its environment has idled 10.1 s > 10 s."""
    log: list[dict[str, Any]] = []
    settings = lambda_settings(init_duration_ms=200, idle_reclaim_s=10)
    world = build_world(sleeping_program(1, log), lambda_=settings)
    invoke_at(world, 0.0)
    invoke_at(world, 11.3)

    world.env.run(until=20)

    rows = invocation_rows(world.function.records)
    assert [row["cold"] for row in rows] == [True, True]
    assert [entry["runs"] for entry in log] == [1, 1]
    assert log[1]["handler_start_at_s"] == pytest.approx(11.5)


def test_idle_environment_within_reclaim_is_warm():
    log: list[dict[str, Any]] = []
    settings = lambda_settings(init_duration_ms=200, idle_reclaim_s=10)
    world = build_world(sleeping_program(1, log), lambda_=settings)
    invoke_at(world, 0.0)
    invoke_at(world, 11.1)

    world.env.run(until=20)

    rows = invocation_rows(world.function.records)
    assert [row["cold"] for row in rows] == [True, False]
    assert [entry["runs"] for entry in log] == [1, 2]


# ---------------------------------------------------------------------------------------------
# Timeout and billing


def test_timeout_stops_invocation_at_timeout():
    """A handler still running at the timeout is stopped then, and billed the timeout plus Init."""
    settings = lambda_settings(init_duration_ms=200, max_retry_attempts=0)
    world = build_world(sleeping_program(20), lambda_=settings, timeout_s=3.0)
    invoke_at(world, 0.0)

    world.env.run(until=10)

    row = invocation_rows(world.function.records)[0]
    assert row["end_reason"] == "timeout"
    assert row["end_at_s"] == pytest.approx(3.2)
    assert row["billed_ms"] == 3200


def test_timeout_billing_without_init():
    settings = lambda_settings(init_duration_ms=200, max_retry_attempts=0, bill_init=False)
    world = build_world(sleeping_program(20), lambda_=settings, timeout_s=3.0)
    invoke_at(world, 0.0)

    world.env.run(until=10)

    row = invocation_rows(world.function.records)[0]
    assert row["billed_ms"] == 3000


def test_timed_out_environment_not_reused():
    """Lambda resets the environment of a timed-out invocation, so the next one starts cold."""
    log: list[dict[str, Any]] = []
    settings = lambda_settings(init_duration_ms=200, max_retry_attempts=0)
    world = build_world(sleeping_program(5, log), lambda_=settings, timeout_s=3.0)
    invoke_at(world, 0.0)
    invoke_at(world, 10.0)

    world.env.run(until=20)

    rows = invocation_rows(world.function.records)
    assert [row["cold"] for row in rows] == [True, True]
    assert [entry["runs"] for entry in log] == [1, 1]


def test_billing_rounds_up_to_whole_ms():
    """A 1.0004 s handler (1 s wait plus 0.4 ms latency) is billed 1001 ms."""
    world = build_world(sleeping_program(1), latency=zero_latency(receive_ms=0.4))
    invoke_at(world, 0.0)

    world.env.run(until=10)

    row = invocation_rows(world.function.records)[0]
    assert row["billed_ms"] == 1001


def test_billing_ignores_float_noise():
    """Three 100 ms calls sum to 0.30000000000000004 s in float64, billed as 300 ms, not 301."""

    def factory(context, state):
        for _ in range(3):
            yield Receive(10, 0)
        return FINISHED

    world = build_world(factory, latency=zero_latency(receive_ms=100))
    invoke_at(world, 0.0)

    world.env.run(until=10)

    row = invocation_rows(world.function.records)[0]
    assert row["billed_ms"] == 300


def test_remaining_time_at_handler_start_is_timeout():
    remaining_ms: list[int] = []

    def factory(context, state):
        remaining_ms.append(context.get_remaining_time_in_millis())
        yield Receive(10, 1)
        remaining_ms.append(context.get_remaining_time_in_millis())
        return FINISHED

    world = build_world(factory, lambda_=lambda_settings(init_duration_ms=200), timeout_s=3.0)
    invoke_at(world, 0.0)

    world.env.run(until=10)

    assert remaining_ms == [3000, 2000]


# ---------------------------------------------------------------------------------------------
# Concurrency and asynchronous retries


def test_concurrency_limit_throttles_with_backoff():
    """The second event is throttled at 0, 1, 3 and 7 s (backoff 1, 2, 4, 8 s) and runs at 15 s."""
    world = build_world(sleeping_program(10), lambda_=lambda_settings(concurrency_limit=1))
    invoke_at(world, 0.0)
    invoke_at(world, 0.0)

    world.env.run(until=60)

    rows = invocation_rows(world.function.records)
    assert world.function.records.throttles == 4
    assert [row["start_at_s"] for row in rows] == [0.0, 15.0]


def test_throttled_event_dropped_past_max_event_age():
    """Throttled at 0, 1, 3, 7, 15 and 31 s, the event is dropped because 63 s is past its 60 s max age."""
    settings = lambda_settings(concurrency_limit=1, max_event_age_s=60)
    world = build_world(sleeping_program(100), lambda_=settings, timeout_s=200.0)
    invoke_at(world, 0.0)
    invoke_at(world, 0.0)

    world.env.run(until=150)

    assert world.function.records.throttles == 6
    assert world.function.records.dropped["event_age"] == 1
    assert len(world.function.records.invocations) == 1


def test_function_error_retried_twice():
    """A failed event is retried about 1 minute after the first failure and 2 minutes after the second."""
    world = build_world(sleeping_program(0), lambda_=lambda_settings(failure_probability=1.0))
    invoke_at(world, 0.0)

    world.env.run(until=1000)

    rows = invocation_rows(world.function.records)
    assert [row["trigger"] for row in rows] == ["timer", "retry", "retry"]
    assert [row["attempt"] for row in rows] == [0, 1, 2]
    assert [row["start_at_s"] for row in rows] == [0.0, 60.0, 180.0]
    assert [row["end_reason"] for row in rows] == ["error", "error", "error"]
    assert world.function.records.dropped["retries_exhausted"] == 1


def test_max_retry_attempts_zero_no_retry():
    settings = lambda_settings(failure_probability=1.0, max_retry_attempts=0)
    world = build_world(sleeping_program(0), lambda_=settings)
    invoke_at(world, 0.0)

    world.env.run(until=1000)

    assert len(world.function.records.invocations) == 1
    assert world.function.records.dropped["retries_exhausted"] == 1


def test_timeout_retried_like_error():
    """A timeout counts as a function error, so the event is retried 60 s after it ends."""
    settings = lambda_settings(max_retry_attempts=1)
    world = build_world(sleeping_program(20), lambda_=settings, timeout_s=3.0)
    invoke_at(world, 0.0)

    world.env.run(until=200)

    rows = invocation_rows(world.function.records)
    assert [row["start_at_s"] for row in rows] == [0.0, 63.0]
    assert [row["end_reason"] for row in rows] == ["timeout", "timeout"]


def test_async_duplicate_delivers_event_twice():
    world = build_world(sleeping_program(1), lambda_=lambda_settings(async_duplicate_probability=1.0))
    invoke_at(world, 0.0)

    world.env.run(until=10)

    assert len(world.function.records.invocations) == 2
    assert world.function.records.async_duplicates == 1


# ---------------------------------------------------------------------------------------------
# Recursive loop detection


def self_invoking_program(context, state):
    yield InvokeSelf({})
    return DrainOutcome(StopReason.SELF_INVOKED, cycles=0, received=0, published=0)


def test_recursive_loop_detection_stops_at_16():
    """Lambda drops the 17th invocation of one chain unless recursion is allowed."""
    world = build_world(self_invoking_program, latency=zero_latency(invoke_ms=100), allow_recursion=False)
    chain_id = world.function.start_chain(Trigger.START)

    world.env.run(until=10)

    rows = invocation_rows(world.function.records)
    assert len(rows) == 16
    assert [row["chain_depth"] for row in rows] == list(range(1, 17))
    assert world.function.records.dropped["recursive_loop"] == 1
    assert not world.function.chain_alive(chain_id)


def test_recursion_allowed_goes_past_16():
    world = build_world(self_invoking_program, latency=zero_latency(invoke_ms=100), allow_recursion=True)
    chain_id = world.function.start_chain(Trigger.START)

    world.env.run(until=10)

    assert len(world.function.records.invocations) > 16
    assert world.function.records.dropped["recursive_loop"] == 0
    assert world.function.chain_alive(chain_id)


# ---------------------------------------------------------------------------------------------
# Messages of a timed-out invocation


def test_timed_out_messages_received_again_later():
    """A publish that outlasts the 3 s timeout leaves its messages undeleted until they reappear.

    The first invocation receives message 0 at 0 s and is stopped at 3 s. The second starts
    polling at 4 s and receives the message when its 5 s visibility timeout ends.
    """
    received: list[tuple[float, list[int]]] = []

    def factory(context, state):
        messages = yield Receive(10, 2)
        received.append((context.clock_s(), [message.message_id for message in messages]))
        if messages:
            outcome = yield Publish(messages)
            yield Delete(outcome.published)
        return FINISHED

    world = build_world(
        factory,
        arrivals=make_arrivals([0.0]),
        queue=QueueSettings(visibility_timeout_s=5),
        lambda_=lambda_settings(max_retry_attempts=0),
        latency=zero_latency(publish_batch_ms=10_000),
        timeout_s=3.0,
    )
    invoke_at(world, 0.0)
    invoke_at(world, 4.0)

    world.env.run(until=10)

    rows = invocation_rows(world.function.records)
    assert received == [(0.0, [0]), (5.0, [0])]
    assert [row["end_reason"] for row in rows] == ["timeout", "timeout"]
    assert [row["messages_received"] for row in rows] == [1, 1]
    assert world.queue.receive_count_array().tolist() == [2]


def test_timed_out_poll_does_not_take_later_message():
    """The long poll of a stopped invocation is withdrawn, so a message due later goes elsewhere.

    The first invocation polls from 0 s and is stopped at 3 s. Message 0 falls due at 5 s, while
    only the second invocation, started at 4 s, is polling.
    """
    settings = lambda_settings(max_retry_attempts=0)
    world = build_world(sleeping_program(20), arrivals=make_arrivals([5.0]), lambda_=settings, timeout_s=3.0)
    invoke_at(world, 0.0)
    invoke_at(world, 4.0)

    world.env.run(until=10)

    rows = invocation_rows(world.function.records)
    assert [row["messages_received"] for row in rows] == [0, 1]
    assert rows[1]["end_at_s"] == 5.0
    assert world.queue.receive_count_array().tolist() == [1]
