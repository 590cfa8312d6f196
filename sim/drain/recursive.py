"""The recursive design's drain program.

One invocation drains the queue cycle after cycle. When too little time remains for another
poll, it invokes its own function asynchronously and returns, so the chain goes on in a new
invocation.
"""

from __future__ import annotations

from typing import Any

from sim.drain.cycle import drain_cycle, time_for_another_poll
from sim.drain.effects import DrainOutcome, DrainProgram, InvocationContext, InvokeSelf, StopReason
from sim.drain.params import RecursiveParams


def recursive_drain(
    params: RecursiveParams, context: InvocationContext, environment_state: dict[str, Any]
) -> DrainProgram:
    """Drain until near the timeout, then hand over to a new invocation of the same function."""
    poll = params.poll
    cycles = received = published = 0

    while time_for_another_poll(context.get_remaining_time_in_millis(), poll):
        cycle_received, cycle_published = yield from drain_cycle(poll)
        cycles += 1
        received += cycle_received
        published += cycle_published

    accepted = yield InvokeSelf({"handed_over_after_cycles": cycles})
    reason = StopReason.SELF_INVOKED if accepted else StopReason.SELF_INVOKE_FAILED
    return DrainOutcome(reason, cycles, received, published)
