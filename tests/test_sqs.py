"""Exact traces of the SQS queue model, and of the SNS topic that records publishes."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import simpy

from sim import limits
from sim.drain.effects import Message
from sim.scenario import QueueSettings
from sim.sns import SnsApi, SnsTopic
from sim.sqs import MessageState, SqsApi, SqsQueue

from conftest import make_arrivals

PollResult = list[tuple[float, list[Message]]]


def make_queue(
    due_at_s: Sequence[float], delay_s: Sequence[int] | None = None, **settings: Any
) -> tuple[simpy.Environment, SqsQueue]:
    """Build a queue whose short polls miss nothing unless ``settings`` sets short_poll_miss_probability."""
    settings.setdefault("short_poll_miss_probability", 0.0)
    env = simpy.Environment()
    arrivals = make_arrivals(due_at_s, delay_s)
    queue = SqsQueue(env, arrivals, QueueSettings(**settings), np.random.default_rng(1))
    return env, queue


def advance(env: simpy.Environment, at_s: float) -> None:
    """Run the simulation up to ``at_s``, leaving the events due exactly at ``at_s`` unprocessed."""
    if at_s > env.now:
        env.run(until=at_s)


def short_poll(
    env: simpy.Environment,
    queue: SqsQueue,
    at_s: float,
    max_messages: int = 10,
    visibility_timeout_s: int | None = None,
) -> list[int]:
    """Receive with WaitTimeSeconds = 0 at ``at_s`` and return the message ids."""
    advance(env, at_s)
    messages = queue.receive_now(max_messages, visibility_timeout_s, short_poll=True)
    return [message.message_id for message in messages]


def start_long_poll(
    env: simpy.Environment,
    queue: SqsQueue,
    at_s: float = 0.0,
    max_messages: int = 10,
    wait_s: float = 20,
) -> PollResult:
    """Start a long poll at ``at_s`` and return a list that gets its (response time, messages)."""
    result: PollResult = []

    def poll():
        if at_s > env.now:
            yield env.timeout(at_s - env.now)
        messages = queue.receive_now(max_messages, None, short_poll=False)
        if messages is None:
            messages = yield queue.wait_for_messages(max_messages, None, wait_s)
        result.append((env.now, messages))

    env.process(poll())
    return result


def run_bounded(env: simpy.Environment, until_s: float, max_steps: int = 10_000) -> None:
    """Run to ``until_s``, giving up after ``max_steps`` events, so a livelock fails instead of hanging."""
    steps = 0
    while env.peek() < until_s and steps < max_steps:
        env.step()
        steps += 1
    if env.peek() >= until_s:
        env.run(until=until_s)


def ids(messages: list[Message]) -> list[int]:
    return [message.message_id for message in messages]


def state_of(queue: SqsQueue, index: int, at_s: float) -> MessageState:
    return MessageState(queue.final_states(at_s)[index])


# ---------------------------------------------------------------------------------------------
# Delay


def test_delayed_message_hidden_before_due():
    """A message sent at 2 s with DelaySeconds 3 is hidden until 5 s."""
    env, queue = make_queue([5.0], delay_s=[3])

    assert short_poll(env, queue, 4.999) == []


def test_delayed_message_visible_at_due():
    env, queue = make_queue([5.0], delay_s=[3])

    assert short_poll(env, queue, 5.0) == [0]


# ---------------------------------------------------------------------------------------------
# Long polling


def test_long_poll_returns_at_first_visible_message():
    """A long poll returns as soon as one message is visible, with all visible up to the max."""
    env, queue = make_queue([5.0, 5.0, 6.0])
    result = start_long_poll(env, queue, at_s=0.0, max_messages=10, wait_s=20)

    env.run(until=30)

    assert len(result) == 1
    returned_at_s, messages = result[0]
    assert returned_at_s == 5.0
    assert ids(messages) == [0, 1]


def test_long_poll_returns_empty_at_wait_expiry():
    env, queue = make_queue([25.0])
    result = start_long_poll(env, queue, at_s=1.0, wait_s=20)

    env.run(until=30)

    assert result == [(21.0, [])]


def test_long_poll_returns_at_most_max():
    env, queue = make_queue([0.0, 0.0, 0.0])
    result = start_long_poll(env, queue, at_s=1.0, max_messages=2)

    env.run(until=30)

    returned_at_s, messages = result[0]
    assert returned_at_s == 1.0
    assert ids(messages) == [0, 1]
    assert short_poll(env, queue, 30.0) == [2]


def test_long_poll_wakes_with_at_most_max_messages():
    """Three messages fall due together while the poll waits, but it returns only two."""
    env, queue = make_queue([5.0, 5.0, 5.0])
    result = start_long_poll(env, queue, at_s=0.0, max_messages=2)

    env.run(until=30)

    returned_at_s, messages = result[0]
    assert returned_at_s == 5.0
    assert ids(messages) == [0, 1]


def test_long_poll_false_empty_keeps_messages_visible():
    """With long_poll_empty_probability 1 a long poll returns empty at once and receives nothing."""
    env, queue = make_queue([0.0, 0.0], long_poll_empty_probability=1.0)
    advance(env, 1.0)

    assert queue.receive_now(10, None, short_poll=False) == []
    assert queue.receive_count_array().tolist() == [0, 0]
    assert short_poll(env, queue, 2.0) == [0, 1]
    assert queue.receive_count_array().tolist() == [1, 1]
    assert queue.first_receive_at_s_array().tolist() == [2.0, 2.0]


# ---------------------------------------------------------------------------------------------
# Short polling


def test_short_poll_miss_probability_one_returns_nothing():
    env, queue = make_queue([0.0, 0.0], short_poll_miss_probability=1.0)

    assert short_poll(env, queue, 1.0) == []
    assert queue.receive_count_array().tolist() == [0, 0]


def test_short_poll_without_misses_returns_up_to_max():
    env, queue = make_queue([0.0, 0.0, 0.0, 9.0])

    assert short_poll(env, queue, 1.0, max_messages=2) == [0, 1]
    assert short_poll(env, queue, 1.0, max_messages=10) == [2]


def test_short_poll_without_misses_returns_all_visible():
    env, queue = make_queue([0.0, 0.0, 0.0, 9.0])

    assert short_poll(env, queue, 1.0, max_messages=10) == [0, 1, 2]


# ---------------------------------------------------------------------------------------------
# Visibility timeout, receive count and delete


def test_message_reappears_after_queue_visibility_timeout():
    env, queue = make_queue([0.0], visibility_timeout_s=30)
    assert short_poll(env, queue, 0.0) == [0]

    assert short_poll(env, queue, 29.999) == []
    assert short_poll(env, queue, 30.0) == [0]


def test_message_reappears_after_receive_override():
    """A per-receive VisibilityTimeout replaces the queue's for the messages of that receive."""
    env, queue = make_queue([0.0], visibility_timeout_s=30)
    assert short_poll(env, queue, 0.0, visibility_timeout_s=5) == [0]

    assert short_poll(env, queue, 4.999) == []
    assert short_poll(env, queue, 5.0) == [0]


def test_reappearing_message_wakes_waiting_long_poll():
    env, queue = make_queue([0.0], visibility_timeout_s=10)
    assert short_poll(env, queue, 0.0) == [0]
    result = start_long_poll(env, queue, at_s=2.0, wait_s=20)

    env.run(until=30)

    returned_at_s, messages = result[0]
    assert returned_at_s == 10.0
    assert ids(messages) == [0]


def test_competing_poll_gets_message_after_timeout():
    """A message received by one waiting poll and not deleted goes to the other waiting poll."""
    env, queue = make_queue([2.0, 100.0], visibility_timeout_s=3)
    first = start_long_poll(env, queue, at_s=0.0, wait_s=20)
    second = start_long_poll(env, queue, at_s=1.0, wait_s=20)

    env.run(until=30)

    assert first == [(2.0, [Message(0, 0)])]
    assert second == [(5.0, [Message(0, 1)])]


def test_receive_count_increments_per_receive():
    env, queue = make_queue([0.0], visibility_timeout_s=30)

    for at_s in (0.0, 30.0, 60.0):
        assert short_poll(env, queue, at_s) == [0]

    assert queue.receive_count_array().tolist() == [3]
    assert queue.first_receive_at_s_array().tolist() == [0.0]


def test_delete_with_latest_handle_removes_message():
    env, queue = make_queue([0.0], visibility_timeout_s=30)
    advance(env, 1.0)
    messages = queue.receive_now(10, None, short_poll=True)

    queue.delete(messages)

    assert state_of(queue, 0, 1.0) is MessageState.DELETED
    assert queue.in_flight == 0
    assert short_poll(env, queue, 31.0) == []


def test_delete_with_stale_handle_keeps_message():
    """After a second receive, the first receipt handle no longer deletes the message."""
    env, queue = make_queue([0.0], visibility_timeout_s=30)
    first = queue.receive_now(10, None, short_poll=True)
    advance(env, 30.0)
    second = queue.receive_now(10, None, short_poll=True)
    assert first[0].receipt_handle != second[0].receipt_handle

    queue.delete(first)

    assert state_of(queue, 0, 30.0) is MessageState.IN_FLIGHT
    assert short_poll(env, queue, 60.0) == [0]


def test_delete_after_timeout_without_new_receive_removes():
    """A handle whose visibility timeout expired still deletes a message not received since."""
    env, queue = make_queue([0.0], visibility_timeout_s=30)
    messages = queue.receive_now(10, None, short_poll=True)
    advance(env, 40.0)

    queue.delete(messages)

    assert state_of(queue, 0, 40.0) is MessageState.DELETED
    assert short_poll(env, queue, 41.0) == []


def test_delete_duplicate_copy_reappears():
    """With duplicate_probability 1 a delete leaves a copy that comes back after the timeout."""
    env, queue = make_queue([0.0], visibility_timeout_s=30, duplicate_probability=1.0)
    messages = queue.receive_now(10, None, short_poll=True)

    queue.delete(messages)

    assert state_of(queue, 0, 0.0) is MessageState.IN_FLIGHT
    assert short_poll(env, queue, 30.0) == [0]


# ---------------------------------------------------------------------------------------------
# Redrive to the dead-letter queue


def test_redrive_moves_third_receive_to_dlq():
    """With maxReceiveCount 2, the receive after the second one moves the message to the DLQ."""
    env, queue = make_queue([0.0], visibility_timeout_s=10, max_receive_count=2)
    assert short_poll(env, queue, 0.0) == [0]
    assert short_poll(env, queue, 10.0) == [0]

    assert short_poll(env, queue, 20.0) == []
    assert state_of(queue, 0, 20.0) is MessageState.DLQ
    assert queue.dlq_moves == 1
    assert queue.receive_count_array().tolist() == [2]


def test_redrive_message_never_returns_after_dlq():
    env, queue = make_queue([0.0], visibility_timeout_s=10, max_receive_count=1)
    assert short_poll(env, queue, 0.0) == [0]
    assert short_poll(env, queue, 10.0) == []

    assert short_poll(env, queue, 100.0) == []
    assert queue.dlq_moves == 1


# ---------------------------------------------------------------------------------------------
# Retention


def test_retention_expires_unreceived_message():
    env, queue = make_queue([0.0], retention_s=60)

    assert state_of(queue, 0, 59.999) is MessageState.QUEUED
    assert state_of(queue, 0, 60.0) is MessageState.EXPIRED


def test_retention_expired_message_never_returned():
    env, queue = make_queue([0.0], retention_s=60)
    result = start_long_poll(env, queue, at_s=60.0, wait_s=5)

    env.run(until=70)

    assert result == [(65.0, [])]
    assert short_poll(env, queue, 70.0) == []


def test_retention_counts_from_send_not_due():
    """A message sent at 0 s with a 30 s delay expires at 60 s, only 30 s after it fell due."""
    env, queue = make_queue([30.0], delay_s=[30], retention_s=60)

    assert short_poll(env, queue, 60.0) == []
    assert state_of(queue, 0, 60.0) is MessageState.EXPIRED


def test_retention_expires_reappeared_message():
    env, queue = make_queue([0.0], visibility_timeout_s=40, retention_s=60)
    assert short_poll(env, queue, 0.0) == [0]

    assert short_poll(env, queue, 60.0) == []
    assert state_of(queue, 0, 60.0) is MessageState.EXPIRED


def test_retention_expires_in_flight_message():
    env, queue = make_queue([0.0], visibility_timeout_s=300, retention_s=60)
    assert short_poll(env, queue, 0.0) == [0]

    assert state_of(queue, 0, 59.0) is MessageState.IN_FLIGHT
    assert state_of(queue, 0, 60.0) is MessageState.EXPIRED


def test_short_poll_skips_expired_messages():
    """Expired messages do not take the places of visible ones in a response of max 2."""
    env, queue = make_queue([0.0, 0.0, 0.0, 50.0], retention_s=60)

    assert short_poll(env, queue, 70.0, max_messages=2) == [3]


# ---------------------------------------------------------------------------------------------
# Competing consumers


def test_competing_long_polls_one_message():
    """Of two waiting long polls, one gets the message and the other waits until its expiry."""
    env, queue = make_queue([5.0])
    first = start_long_poll(env, queue, at_s=0.0, wait_s=20)
    second = start_long_poll(env, queue, at_s=1.0, wait_s=20)

    env.run(until=30)

    assert first == [(5.0, [Message(0, 0)])]
    assert second == [(21.0, [])]


def test_competing_long_polls_share_later_message():
    env, queue = make_queue([5.0, 8.0])
    first = start_long_poll(env, queue, at_s=0.0, wait_s=20)
    second = start_long_poll(env, queue, at_s=1.0, wait_s=20)

    env.run(until=30)

    assert first == [(5.0, [Message(0, 0)])]
    assert second == [(8.0, [Message(1, 1)])]


def test_cancel_wait_removes_waiter():
    env, queue = make_queue([5.0])
    assert queue.receive_now(10, None, short_poll=False) is None
    cancelled = queue.wait_for_messages(10, None, 20)
    other = start_long_poll(env, queue, at_s=1.0, wait_s=20)

    queue.cancel_wait(cancelled)
    env.run(until=30)

    assert not cancelled.triggered
    assert other == [(5.0, [Message(0, 0)])]


def test_long_poll_at_in_flight_limit():
    """At the in-flight limit a long poll gets no messages, and simulated time still advances.

    The poll may end at once or when its wait expires, but it must end empty.
    """
    env, queue = make_queue([0.0] * (limits.MAX_IN_FLIGHT_MESSAGES + 1))
    for _ in range(limits.MAX_IN_FLIGHT_MESSAGES // 10):
        queue.receive_now(10, None, short_poll=True)
    assert queue.in_flight == limits.MAX_IN_FLIGHT_MESSAGES
    result = start_long_poll(env, queue, at_s=1.0, wait_s=20)

    run_bounded(env, until_s=25.0)

    assert env.now == 25.0
    assert len(result) == 1
    assert result[0][1] == []


# ---------------------------------------------------------------------------------------------
# Request counts


def test_every_receive_call_counted_once():
    """Each receive_now call counts one ReceiveMessage, and waiting adds none.

    The engine, not the queue, counts empty responses.
    """
    env, queue = make_queue([5.0])
    short_poll(env, queue, 1.0)
    result = start_long_poll(env, queue, at_s=2.0, wait_s=1)
    env.run(until=10)
    assert result == [(3.0, [])]

    assert queue.requests[SqsApi.RECEIVE_MESSAGE] == 2
    assert queue.requests[SqsApi.RECEIVE_MESSAGE_EMPTY] == 0


def test_count_empty_receive_adds_empty_count():
    env, queue = make_queue([])

    queue.count_empty_receive()

    assert queue.requests[SqsApi.RECEIVE_MESSAGE_EMPTY] == 1
    assert queue.requests[SqsApi.RECEIVE_MESSAGE] == 0


# ---------------------------------------------------------------------------------------------
# SNS topic


def test_publish_batch_records_first_time_and_count():
    topic = SnsTopic(3, 0.0, np.random.default_rng(1))

    outcome = topic.publish([Message(0, 0), Message(1, 1)], 2.5, SnsApi.PUBLISH_BATCH)

    assert ids(outcome.published) == [0, 1]
    assert outcome.failed == []
    assert topic.requests[SnsApi.PUBLISH_BATCH] == 1
    assert topic.publish_count_array().tolist() == [1, 1, 0]
    first_at_s = topic.first_publish_at_s_array()
    assert first_at_s[:2].tolist() == [2.5, 2.5]
    assert math.isnan(first_at_s[2])


def test_publish_failure_probability_one_fails_all():
    topic = SnsTopic(2, 1.0, np.random.default_rng(1))

    outcome = topic.publish([Message(0, 0), Message(1, 1)], 2.5, SnsApi.PUBLISH_BATCH)

    assert outcome.published == []
    assert ids(outcome.failed) == [0, 1]
    assert topic.requests[SnsApi.PUBLISH_BATCH] == 1
    assert topic.publish_count_array().tolist() == [0, 0]
    assert np.isnan(topic.first_publish_at_s_array()).all()


def test_second_publish_counts_duplicate():
    topic = SnsTopic(1, 0.0, np.random.default_rng(1))

    topic.publish([Message(0, 0)], 2.0, SnsApi.PUBLISH)
    topic.publish([Message(0, 1)], 5.0, SnsApi.PUBLISH)

    assert topic.publish_count_array().tolist() == [2]
    assert topic.first_publish_at_s_array().tolist() == [2.0]
    assert topic.requests[SnsApi.PUBLISH] == 2


def test_publish_completing_earlier_sets_first_time():
    """Concurrent Publish calls can complete out of order, and the earliest completion counts."""
    topic = SnsTopic(1, 0.0, np.random.default_rng(1))

    topic.publish([Message(0, 0)], 5.0, SnsApi.PUBLISH)
    topic.publish([Message(0, 0)], 3.0, SnsApi.PUBLISH)

    assert topic.first_publish_at_s_array().tolist() == [3.0]


def test_final_states_count_expired_visibility_as_queued():
    """A message received and not deleted is back in the queue once its visibility timeout ends."""
    env, queue = make_queue([1.0], visibility_timeout_s=10)
    assert short_poll(env, queue, 1.0) == [0]

    advance(env, 20.0)

    assert state_of(queue, 0, 20.0) is MessageState.QUEUED


def test_publish_completing_after_run_end_not_recorded():
    topic = SnsTopic(2, 0.0, np.random.default_rng(1), end_at_s=100.0)

    topic.publish([Message(0, 0), Message(1, 1)], 100.5, SnsApi.PUBLISH_BATCH)

    assert topic.publish_count_array().tolist() == [0, 0]
    assert np.isnan(topic.first_publish_at_s_array()).all()
