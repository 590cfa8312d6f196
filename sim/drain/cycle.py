"""One receive, publish and delete cycle, shared by both designs."""

from __future__ import annotations

from typing import Any, Generator

from sim.drain.effects import Delete, Effect, Message, Publish, PublishOutcome, Receive
from sim.drain.params import PollParams


def drain_cycle(poll: PollParams) -> Generator[Effect, Any, tuple[int, int]]:
    """Receive one batch, publish it and delete what was published.

    Returns (received, published). A message whose publish failed is not deleted, so it becomes
    visible again after its visibility timeout and is retried by a later receive.
    """
    messages: list[Message] = yield Receive(poll.batch_size, poll.wait_s, poll.visibility_timeout_s)
    if not messages:
        return 0, 0

    outcome: PublishOutcome = yield Publish(messages, poll.publish_batch)
    if outcome.published:
        yield Delete(outcome.published, poll.delete_batch)
    return len(messages), len(outcome.published)


def time_for_another_poll(remaining_ms: int, poll: PollParams) -> bool:
    """Tell whether a full long poll plus the safety margin still fits before the timeout."""
    return remaining_ms / 1000.0 > poll.wait_s + poll.safety_margin_s
