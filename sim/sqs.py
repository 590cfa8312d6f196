"""The SQS standard delay queue.

Every message of the run is known in advance, so message state lives in numpy arrays indexed by
the message's position in due-time order, and no SimPy event is created per message. Events are
created per API call: a long poll that finds nothing registers a waiter, and the queue wakes the
waiters when the next message becomes visible.

Rules modelled, from the Amazon SQS Developer Guide unless noted:
- A message sent with DelaySeconds is hidden until send time + delay ("message timers").
- A received message is hidden for the visibility timeout, counted from the moment SQS returns
  it. If it is not deleted in time, it becomes visible again ("visibility timeout").
- Each receive increments the receive count. With a redrive policy, a message whose receive count
  has reached maxReceiveCount moves to the dead-letter queue instead of being received again
  ("dead-letter queues").
- A message is deleted once it has been in the queue for the retention period, counted from the
  send, also when it is in flight or in the dead-letter queue ("MessageRetentionPeriod").
- A long poll returns as soon as at least one message is visible, with up to MaxNumberOfMessages,
  and returns empty only when its wait expires ("short and long polling").
- A short poll samples a subset of the servers and may miss visible messages (same page).
- At the in-flight limit a long poll returns no messages and no error ("standard queue quotas").
"""

from __future__ import annotations

import bisect
import enum
import heapq
import math
import logging
from collections import Counter, deque
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import simpy

from sim import limits
from sim.drain.effects import Message
from sim.scenario import QueueSettings
from sim.workload import Arrivals

logger = logging.getLogger(__name__)


class MessageState(enum.IntEnum):
    """Location of a message. QUEUED covers both delayed and visible messages."""

    QUEUED = 0
    IN_FLIGHT = 1
    DELETED = 2
    DLQ = 3
    EXPIRED = 4


# Plain ints for the hot paths: an IntEnum member lookup costs a Python-level attribute access.
_QUEUED = int(MessageState.QUEUED)
_IN_FLIGHT = int(MessageState.IN_FLIGHT)
_DELETED = int(MessageState.DELETED)
_DLQ = int(MessageState.DLQ)
_EXPIRED = int(MessageState.EXPIRED)


class SqsApi(str, enum.Enum):
    """SQS actions whose requests are counted (each is a billable request)."""

    RECEIVE_MESSAGE = "ReceiveMessage"
    RECEIVE_MESSAGE_EMPTY = "ReceiveMessage_empty"
    DELETE_MESSAGE = "DeleteMessage"
    DELETE_MESSAGE_BATCH = "DeleteMessageBatch"
    SEND_MESSAGE = "SendMessage"
    SEND_MESSAGE_BATCH = "SendMessageBatch"


@dataclass(eq=False)
class _Waiter:
    """A long poll waiting for a message to become visible."""

    event: simpy.Event
    max_messages: int
    visibility_timeout_s: int
    started_at_s: float
    done: bool = False


class SqsQueue:
    """One standard queue holding a run's messages, with competing consumers.

    Per-message state is kept in Python lists, which are faster than numpy arrays for the
    one-message reads and writes of the hot path. The ``*_array`` methods convert at the end.
    """

    def __init__(
        self,
        env: simpy.Environment,
        arrivals: Arrivals,
        settings: QueueSettings,
        rng: np.random.Generator,
    ) -> None:
        self.env = env
        self.settings = settings
        self._rng = rng

        count = len(arrivals)
        self._send_at_s: list[float] = arrivals.send_at_s.tolist()
        self._due_at_s: list[float] = arrivals.due_at_s.tolist()
        self._delay_s: list[int] = arrivals.delay_s.tolist()
        self._state = [_QUEUED] * count
        self._receive_count = [0] * count
        self._first_receive_at_s = [math.nan] * count
        self._receipt = [-1] * count
        self._retention_s = float(settings.retention_s)

        # Messages at positions >= _next_fresh have never been received; those due by now are
        # visible. Messages visible again after a receive wait in _revisible, oldest first.
        self._next_fresh = 0
        self._fresh_run_has_expired = False
        self._revisible: deque[int] = deque()
        # Heap of (visible_again_at_s, sequence, indices, receipts), one entry per receive.
        self._reappearances: list[tuple[float, int, list[int], list[int]]] = []
        self._reappearance_sequence = 0
        self._next_receipt = 0
        self.in_flight = 0

        self._waiters: deque[_Waiter] = deque()
        self._wake_generation = 0
        self._wake_at_s = math.inf

        self.requests: Counter[str] = Counter()
        self.dlq_moves = 0

    # -----------------------------------------------------------------------------------------
    # ReceiveMessage

    def receive_now(
        self, max_messages: int, visibility_timeout_s: int | None, short_poll: bool
    ) -> list[Message] | None:
        """Start a ReceiveMessage request and take what it gets at the current time.

        Returns the messages taken, an empty list for a response that is empty at once (a short
        poll, or a long poll's rare false empty), or None when a long poll found nothing and
        should wait with ``wait_for_messages``. A false empty applies only to a poll that finds
        messages at once, not to one woken while waiting.
        """
        visibility_s = self._visibility(visibility_timeout_s)
        self.requests[SqsApi.RECEIVE_MESSAGE] += 1

        if self.in_flight >= limits.MAX_IN_FLIGHT_MESSAGES:
            return [] if short_poll else None
        if short_poll:
            available = self._visible_upper_bound()
            if available == 0:
                return []
            keep_probability = 1.0 - self.settings.short_poll_miss_probability
            max_messages = min(max_messages, int(self._rng.binomial(available, keep_probability)))
            if max_messages == 0:
                return []
            return self._take(max_messages, visibility_s)

        messages = self._take(max_messages, visibility_s)
        if not messages:
            return None
        empty_probability = self.settings.long_poll_empty_probability
        if empty_probability > 0 and self._rng.random() < empty_probability:
            self._return_unreceived(messages)
            return []
        return messages

    def wait_for_messages(self, max_messages: int, visibility_timeout_s: int | None, wait_s: float) -> simpy.Event:
        """Return an event that succeeds with the messages of a long poll that found none at first.

        The event's value is a list of messages when some became visible within ``wait_s``, or an
        empty list when the wait expired. Cancel it with ``cancel_wait`` if the caller dies.
        """
        waiter = _Waiter(self.env.event(), max_messages, self._visibility(visibility_timeout_s), self.env.now)
        waiter.event.waiter = waiter  # type: ignore[attr-defined]
        self._waiters.append(waiter)
        deadline = self.env.timeout(wait_s)
        deadline.callbacks.append(lambda _event, waiter=waiter: self._expire_waiter(waiter))
        self._schedule_wake()
        return waiter.event

    def cancel_wait(self, event: simpy.Event) -> None:
        """Forget the waiter behind ``event``: its caller was stopped while polling."""
        waiter: _Waiter = event.waiter  # type: ignore[attr-defined]
        if not waiter.done:
            waiter.done = True
            self._waiters.remove(waiter)

    def count_empty_receive(self) -> None:
        self.requests[SqsApi.RECEIVE_MESSAGE_EMPTY] += 1

    def _visibility(self, override_s: int | None) -> int:
        return self.settings.visibility_timeout_s if override_s is None else override_s

    def _expire_waiter(self, waiter: _Waiter) -> None:
        if waiter.done:
            return
        waiter.done = True
        self._waiters.remove(waiter)
        waiter.event.succeed([])

    def _schedule_wake(self) -> None:
        """Make sure a wake-up is scheduled for the next time a message becomes visible.

        At the in-flight limit no wake-up is scheduled: waiting long polls get no messages and
        return empty when their wait expires, even if messages are deleted meanwhile.
        """
        if not self._waiters or self.in_flight >= limits.MAX_IN_FLIGHT_MESSAGES:
            return
        next_at_s = self._next_visible_at_s()
        if math.isinf(next_at_s):
            return
        granularity_s = self.settings.wakeup_granularity_s
        if granularity_s > 0 and not self._next_is_immediate(next_at_s):
            next_at_s = min(self._next_check_at_s(waiter, next_at_s) for waiter in self._waiters)
        if next_at_s >= self._wake_at_s:
            return
        self._wake_generation += 1
        self._wake_at_s = next_at_s
        generation = self._wake_generation
        wake = self.env.timeout(next_at_s - self.env.now)
        wake.callbacks.append(lambda _event: self._wake(generation))

    def _wake(self, generation: int) -> None:
        if generation != self._wake_generation:
            return
        self._wake_at_s = math.inf
        now = self.env.now
        immediate = self._next_is_immediate(now)
        for waiter in list(self._waiters):
            if not immediate and not self._checks_now(waiter, now):
                continue
            messages = self._take(waiter.max_messages, waiter.visibility_timeout_s)
            if not messages:
                break
            self._waiters.remove(waiter)
            waiter.done = True
            waiter.event.succeed(messages)
        self._schedule_wake()

    def _next_is_immediate(self, at_s: float) -> bool:
        """Tell whether the next message to become visible, at ``at_s``, wakes polls at once.

        With a wake-up granularity, only a message sent without delay does: its SendMessage
        wakes the waiting polls. Without one, every message does.
        """
        if self.settings.wakeup_granularity_s <= 0:
            return True
        index = self._next_fresh
        if self._revisible or index >= len(self._due_at_s) or self._due_at_s[index] > at_s:
            return False
        return self._delay_s[index] == 0

    def _next_check_at_s(self, waiter: _Waiter, at_s: float) -> float:
        """Return the first of the waiter's periodic checks at or after ``at_s``."""
        granularity_s = self.settings.wakeup_granularity_s
        checks = math.ceil((at_s - waiter.started_at_s) / granularity_s - 1e-9)
        return waiter.started_at_s + max(checks, 0) * granularity_s

    def _checks_now(self, waiter: _Waiter, now: float) -> bool:
        if self.settings.wakeup_granularity_s <= 0:
            return True
        return abs(self._next_check_at_s(waiter, now) - now) < 1e-9

    def _next_visible_at_s(self) -> float:
        now = self.env.now
        if self._revisible:
            return now
        next_at_s = math.inf
        if self._next_fresh < len(self._due_at_s):
            next_at_s = self._due_at_s[self._next_fresh]
        if self._reappearances and self._reappearances[0][0] < next_at_s:
            next_at_s = self._reappearances[0][0]
        return max(now, next_at_s)

    # -----------------------------------------------------------------------------------------
    # Taking messages

    def _visible_upper_bound(self) -> int:
        """Count messages that may be visible now (some may turn out expired or DLQ-bound)."""
        self._release_reappearances()
        fresh_end = bisect.bisect_right(self._due_at_s, self.env.now, lo=self._next_fresh)
        return len(self._revisible) + fresh_end - self._next_fresh

    def _take(self, max_messages: int, visibility_s: int) -> list[Message]:
        """Mark up to ``max_messages`` visible messages in flight and return them."""
        now = self.env.now
        if self._reappearances and self._reappearances[0][0] <= now:
            self._release_reappearances()
        max_messages = min(max_messages, limits.MAX_IN_FLIGHT_MESSAGES - self.in_flight)

        taken: list[int] = []
        if self._revisible:
            taken = self._take_revisible(max_messages, now)
        fresh_start = self._next_fresh
        fresh_stop = fresh_start
        if len(taken) < max_messages:
            fresh_stop = self._take_fresh(max_messages - len(taken), now)
        if not taken and fresh_stop == fresh_start:
            return []
        return self._mark_in_flight(taken, fresh_start, fresh_stop, visibility_s, now)

    def _take_revisible(self, max_messages: int, now: float) -> list[int]:
        state = self._state
        max_receive_count = self.settings.max_receive_count
        taken: list[int] = []
        while self._revisible and len(taken) < max_messages:
            index = self._revisible.popleft()
            if state[index] != _QUEUED:
                continue
            if self._send_at_s[index] + self._retention_s <= now:
                state[index] = _EXPIRED
                continue
            if max_receive_count is not None and self._receive_count[index] >= max_receive_count:
                state[index] = _DLQ
                self.dlq_moves += 1
                continue
            taken.append(index)
        return taken

    def _take_fresh(self, requested: int, now: float) -> int:
        """Advance past ``requested`` never-received visible messages, and any expired ones among them.

        Returns the new start of the fresh range. Expired messages keep their place in the range
        but are marked, and ``_fresh_run_has_expired`` is set so that the caller skips them.
        """
        start = self._next_fresh
        due = self._due_at_s
        self._fresh_run_has_expired = False
        if start >= len(due) or due[start] > now:
            return start
        # Only a message visible for longer than the retention minus the longest delay can have
        # expired, so the per-message check is skipped in the common case.
        if now - due[start] < self._retention_s - limits.MAX_DELAY_S:
            stop = bisect.bisect_right(due, now, lo=start, hi=min(start + requested, len(due)))
            self._next_fresh = stop
            return stop

        index = start
        kept = 0
        while kept < requested and index < len(due) and due[index] <= now:
            if self._send_at_s[index] + self._retention_s <= now:
                self._state[index] = _EXPIRED
                self._fresh_run_has_expired = True
            else:
                kept += 1
            index += 1
        self._next_fresh = index
        return index

    def _mark_in_flight(
        self, revisible: list[int], fresh_start: int, fresh_stop: int, visibility_s: int, now: float
    ) -> list[Message]:
        state = self._state
        receive_count = self._receive_count
        receipt = self._receipt
        first_receive = self._first_receive_at_s

        indices = revisible
        for index in revisible:
            receive_count[index] += 1
            state[index] = _IN_FLIGHT
            if first_receive[index] != first_receive[index]:  # NaN after a false-empty response
                first_receive[index] = now
        fresh = range(fresh_start, fresh_stop)
        fresh_count = fresh_stop - fresh_start
        if fresh_count and not self._fresh_run_has_expired:
            # The common case: a run of never-received messages, updated by slice assignment.
            state[fresh_start:fresh_stop] = [_IN_FLIGHT] * fresh_count
            receive_count[fresh_start:fresh_stop] = [1] * fresh_count
            first_receive[fresh_start:fresh_stop] = [now] * fresh_count
            indices = revisible + list(fresh)
        elif fresh_count:
            kept = [index for index in fresh if state[index] == _QUEUED]
            for index in kept:
                state[index] = _IN_FLIGHT
                receive_count[index] = 1
                first_receive[index] = now
            indices = revisible + kept
        if not indices:
            return []

        first_receipt = self._next_receipt
        self._next_receipt += len(indices)
        receipts = list(range(first_receipt, self._next_receipt))
        for index, handle in zip(indices, receipts):
            receipt[index] = handle
        self.in_flight += len(indices)

        self._reappearance_sequence += 1
        visible_again_at_s = now + visibility_s
        heapq.heappush(self._reappearances, (visible_again_at_s, self._reappearance_sequence, indices, receipts))
        if self._waiters and visible_again_at_s < self._wake_at_s:
            self._schedule_wake()
        return list(map(Message, indices, receipts))

    def _release_reappearances(self) -> None:
        """Make messages whose visibility timeout has expired visible again."""
        now = self.env.now
        heap = self._reappearances
        state = self._state
        receipt = self._receipt
        while heap and heap[0][0] <= now:
            _, _, indices, receipts = heapq.heappop(heap)
            for index, handle in zip(indices, receipts):
                if state[index] == _IN_FLIGHT and receipt[index] == handle:
                    state[index] = _QUEUED
                    self.in_flight -= 1
                    self._revisible.append(index)

    def _return_unreceived(self, messages: list[Message]) -> None:
        """Undo a take whose response was a false empty: the messages stay visible."""
        for index, _handle, _body in reversed(messages):
            self._state[index] = _QUEUED
            self._receive_count[index] -= 1
            if self._receive_count[index] == 0:
                self._first_receive_at_s[index] = math.nan
            self._receipt[index] = -1
            self.in_flight -= 1
            self._revisible.appendleft(index)

    # -----------------------------------------------------------------------------------------
    # DeleteMessage

    def delete(self, messages: Sequence[Message]) -> None:
        """Delete messages by receipt handle.

        SQS deletes only with the most recent receipt handle: after a message was received again,
        an older handle leaves it in the queue, although the request reports success. A handle
        whose visibility timeout expired still deletes a message that no consumer received since.
        """
        state = self._state
        receipt = self._receipt
        duplicate_probability = self.settings.duplicate_probability
        for index, handle, _body in messages:
            if receipt[index] != handle:
                continue
            current = state[index]
            if current == _IN_FLIGHT:
                # At-least-once delivery: a copy on another server may survive the delete and
                # reappear after the visibility timeout.
                if duplicate_probability > 0 and self._rng.random() < duplicate_probability:
                    continue
                state[index] = _DELETED
                self.in_flight -= 1
            elif current == _QUEUED:
                state[index] = _DELETED

    def count_requests(self, api: SqsApi, count: int = 1) -> None:
        self.requests[api] += count

    # -----------------------------------------------------------------------------------------
    # End of run

    def final_states(self, end_at_s: float) -> np.ndarray:
        """Return every message's MessageState at ``end_at_s``, with retention expiry applied.

        Call it when the simulation has stopped at ``end_at_s``: messages whose visibility
        timeout ended by then are made visible again first, so they count as queued.
        """
        self._release_reappearances()
        states = np.array(self._state, dtype=np.int8)
        # Messages in the dead-letter queue are reported there, whatever its own retention.
        alive = (states == _QUEUED) | (states == _IN_FLIGHT)
        expires_at_s = np.array(self._send_at_s) + self._retention_s
        states[alive & (expires_at_s <= end_at_s)] = _EXPIRED
        return states

    def receive_count_array(self) -> np.ndarray:
        return np.array(self._receive_count, dtype=np.int32)

    def first_receive_at_s_array(self) -> np.ndarray:
        return np.array(self._first_receive_at_s, dtype=np.float64)
