"""Exact traces of the simulated engine's effects, and one end-to-end run of simulate_design."""

from __future__ import annotations

from typing import Any, Sequence

import pytest
import simpy

from sim.drain.effects import Delete, InvokeSelf, Message, Publish, PublishOutcome, Receive
from sim.engine import SimulatedEffects
from sim.lambda_service import INVOCATION_COLUMNS, AsyncEvent, Invocation, Trigger
from sim.randomness import component_rngs
from sim.scenario import ApiLatencySettings, QueueSettings, Scenario
from sim.simulation import simulate_design
from sim.sns import SnsApi, SnsTopic
from sim.sqs import MessageState, SqsApi, SqsQueue

from conftest import invocation_rows, make_arrivals, zero_latency


class RecordingFunction:
    """Stands in for LambdaFunction and keeps the events of asynchronous Invoke requests."""

    def __init__(self) -> None:
        self.events: list[AsyncEvent] = []

    def invoke_async(self, event: AsyncEvent) -> None:
        self.events.append(event)


class Bench:
    """A queue, a topic and a SimulatedEffects, with one invocation to carry out effects for."""

    def __init__(
        self,
        due_at_s: Sequence[float] = (),
        latency: ApiLatencySettings | None = None,
        sns_failure_probability: float = 0.0,
    ) -> None:
        rngs = component_rngs(1)
        self.env = simpy.Environment()
        self.queue = SqsQueue(self.env, make_arrivals(due_at_s), QueueSettings(), rngs["sqs"])
        self.topic = SnsTopic(len(due_at_s), sns_failure_probability, rngs["sns"])
        self.function = RecordingFunction()
        self.effects = SimulatedEffects(
            self.env, self.queue, self.topic, self.function, latency or zero_latency(), rngs
        )
        self.invocation = Invocation(0, AsyncEvent(Trigger.SELF, 0.0, chain_id=7, chain_depth=3), 0.0)

    def run(self, request: Any) -> tuple[float, Any]:
        """Carry out ``request`` from the current time and return its end time and its result."""
        done: list[tuple[float, Any]] = []

        def drive():
            result = yield from self.effects.handler_for(type(request))(request, self.invocation)
            done.append((self.env.now, result))

        self.env.process(drive())
        self.env.run()
        return done[0]

    def take_all(self) -> list[Message]:
        """Receive every visible message at the current time, 10 at a time."""
        messages: list[Message] = []
        while True:
            batch = self.queue.receive_now(10, None, short_poll=False)
            if not batch:
                return messages
            messages += batch


# ---------------------------------------------------------------------------------------------
# Receive


def test_receive_returns_after_wait_plus_latency():
    """A long poll gets the message when it falls due at 5 s, and the response takes 10 ms more."""
    bench = Bench([5.0], latency=zero_latency(receive_ms=10))

    end_at_s, messages = bench.run(Receive(10, 20))

    assert end_at_s == pytest.approx(5.01)
    assert messages == [Message(0, 0)]
    assert bench.invocation.received == 1


def test_receive_empty_counted_by_engine():
    bench = Bench([], latency=zero_latency(receive_ms=10))

    end_at_s, messages = bench.run(Receive(10, 2))

    assert messages == []
    assert end_at_s == pytest.approx(2.01)
    assert bench.queue.requests[SqsApi.RECEIVE_MESSAGE] == 1
    assert bench.queue.requests[SqsApi.RECEIVE_MESSAGE_EMPTY] == 1


def test_receive_with_messages_not_counted_empty():
    bench = Bench([0.0])

    bench.run(Receive(10, 2))

    assert bench.queue.requests[SqsApi.RECEIVE_MESSAGE] == 1
    assert bench.queue.requests[SqsApi.RECEIVE_MESSAGE_EMPTY] == 0


# ---------------------------------------------------------------------------------------------
# Publish


def test_single_publish_one_request_per_message():
    """Publish calls for each message go out together, so the step lasts as long as the slowest."""
    latency = zero_latency(publish_ms={"kind": "uniform", "low": 10, "high": 50})
    bench = Bench([0.0, 0.0, 0.0], latency=latency)
    messages = bench.take_all()

    end_at_s, outcome = bench.run(Publish(messages, batch=False))

    first_at_s = bench.topic.first_publish_at_s_array()
    assert bench.topic.requests[SnsApi.PUBLISH] == 3
    assert bench.topic.requests[SnsApi.PUBLISH_BATCH] == 0
    assert len(set(first_at_s.tolist())) == 3
    assert end_at_s == first_at_s.max()
    assert outcome == PublishOutcome(messages, [])


def test_publish_batch_splits_into_chunks_of_ten():
    """23 messages go out in 3 PublishBatch requests of 10, 10 and 3, one after the other."""
    bench = Bench([0.0] * 23, latency=zero_latency(publish_batch_ms=20))
    messages = bench.take_all()

    end_at_s, outcome = bench.run(Publish(messages, batch=True))

    assert bench.topic.requests[SnsApi.PUBLISH_BATCH] == 3
    assert bench.topic.requests[SnsApi.PUBLISH] == 0
    assert end_at_s == pytest.approx(0.06)
    expected_at_s = [0.02] * 10 + [0.04] * 10 + [0.06] * 3
    assert bench.topic.first_publish_at_s_array().tolist() == pytest.approx(expected_at_s)
    assert len(outcome.published) == 23
    assert bench.invocation.published == 23


def test_publish_failed_entries_returned():
    bench = Bench([0.0, 0.0], sns_failure_probability=1.0)
    messages = bench.take_all()

    _, outcome = bench.run(Publish(messages, batch=True))

    assert outcome.published == []
    assert outcome.failed == messages
    assert bench.invocation.published == 0


# ---------------------------------------------------------------------------------------------
# Delete


def test_delete_batch_one_request_per_ten():
    bench = Bench([0.0] * 23, latency=zero_latency(delete_batch_ms=10))
    messages = bench.take_all()

    end_at_s, _ = bench.run(Delete(messages, batch=True))

    assert bench.queue.requests[SqsApi.DELETE_MESSAGE_BATCH] == 3
    assert bench.queue.requests[SqsApi.DELETE_MESSAGE] == 0
    assert end_at_s == pytest.approx(0.03)
    assert (bench.queue.final_states(end_at_s) == MessageState.DELETED).all()


def test_delete_single_one_request_per_message():
    """DeleteMessage calls for each message go out together, so the step lasts one latency."""
    bench = Bench([0.0] * 23, latency=zero_latency(delete_ms=10))
    messages = bench.take_all()

    end_at_s, _ = bench.run(Delete(messages, batch=False))

    assert bench.queue.requests[SqsApi.DELETE_MESSAGE] == 23
    assert bench.queue.requests[SqsApi.DELETE_MESSAGE_BATCH] == 0
    assert end_at_s == pytest.approx(0.01)
    assert (bench.queue.final_states(end_at_s) == MessageState.DELETED).all()


def test_delete_applies_when_request_starts():
    bench = Bench([0.0], latency=zero_latency(delete_batch_ms=1000))
    messages = bench.take_all()
    bench.env.process(bench.effects.handler_for(Delete)(Delete(messages), bench.invocation))

    bench.env.run(until=0.5)

    assert bench.queue.final_states(0.5)[0] == MessageState.DELETED


# ---------------------------------------------------------------------------------------------
# InvokeSelf


def test_invoke_self_increments_chain_depth():
    bench = Bench([], latency=zero_latency(invoke_ms=20))

    end_at_s, accepted = bench.run(InvokeSelf({}))

    assert accepted is True
    assert end_at_s == pytest.approx(0.02)
    assert len(bench.function.events) == 1
    event = bench.function.events[0]
    assert event.trigger is Trigger.SELF
    assert event.chain_id == 7
    assert event.chain_depth == 4
    assert event.first_queued_at_s == pytest.approx(0.02)


# ---------------------------------------------------------------------------------------------
# End to end


def tiny_timer_scenario() -> Scenario:
    """A timer design firing every 10 s, with every duration fixed."""
    return Scenario.model_validate(
        {
            "name": "tiny",
            "seed": 1,
            "duration_s": 15,
            "drain_s": 10,
            "workload": {"kind": "flat", "rate_per_s": 1},
            "api_latency": {
                "receive_ms": 10,
                "delete_ms": 0,
                "delete_batch_ms": 10,
                "publish_ms": 0,
                "publish_batch_ms": 20,
                "invoke_ms": 0,
            },
            "lambda": {"init_duration_ms": 100, "async_dispatch_delay_ms": 0},
            "eventbridge": {"delivery_delay_s": 0},
            "designs": {
                "timer": {
                    "kind": "timer",
                    "period_s": 10,
                    "baseline_s": 5,
                    "timeout_s": 20,
                    "wait_s": 1,
                    "safety_margin_s": 1,
                }
            },
        }
    )


def test_simulate_design_timer_exact_trace():
    """Trace by hand: a cycle is a 1 s poll, 10 ms receive, 20 ms publish and 10 ms delete.

    The rule fires at 0, 10 and 20 s. The first invocation is cold, with its handler from 0.1 s.
    It polls at 0.1, 1.11, 2.12 (message 0 at 2.5), 2.54, 3.55, 4.56 (message 1 at 4.8) and
    4.84 s. It stops idle after its 5 s baseline, at 5.85 s. The second invocation is warm and
    takes message 2 at 10 s at once. It gets message 3 at 12.5 s while waiting and stops at
    15.57 s. The third is still polling when the run ends at 25 s. A message received while a
    poll waits is published at its due time + 10 ms + 20 ms.
    """
    scenario = tiny_timer_scenario()
    arrivals = make_arrivals([2.5, 4.8, 7.0, 12.5], delay_s=[2, 2, 2, 2])

    run = simulate_design(scenario, "timer", arrivals)

    rows = [dict(zip(INVOCATION_COLUMNS, row)) for row in run.invocations]
    first_at_s = run.first_publish_at_s.tolist()
    assert first_at_s == pytest.approx([2.53, 4.83, 10.03, 12.53], abs=1e-9)
    assert run.publish_count.tolist() == [1, 1, 1, 1]
    assert run.timer_fires == 3
    assert len(rows) == 3
    assert [row["start_at_s"] for row in rows] == [0.0, 10.0, 20.0]
    assert [row["cold"] for row in rows] == [True, False, False]
    assert [row["end_reason"] for row in rows] == ["idle_after_baseline", "idle_after_baseline", "run_ended"]
    assert [row["end_at_s"] for row in rows] == pytest.approx([5.85, 15.57, 25.0], abs=1e-9)
    assert [row["messages_published"] for row in rows] == [2, 2, 0]
    assert (run.final_states == MessageState.DELETED).all()


def test_simulate_design_timer_request_counts():
    """Polls: 7 in the first invocation, 7 in the second and 5 in the third (one still waiting)."""
    scenario = tiny_timer_scenario()
    arrivals = make_arrivals([2.5, 4.8, 7.0, 12.5], delay_s=[2, 2, 2, 2])

    run = simulate_design(scenario, "timer", arrivals)

    requests = run.sqs_requests
    assert requests[SqsApi.RECEIVE_MESSAGE] == 19
    assert requests[SqsApi.RECEIVE_MESSAGE_EMPTY] == 14
    assert requests[SqsApi.DELETE_MESSAGE_BATCH] == 4
    assert requests[SqsApi.SEND_MESSAGE] == 4
    assert run.sns_requests[SnsApi.PUBLISH_BATCH] == 4
