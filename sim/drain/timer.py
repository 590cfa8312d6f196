"""The timer-triggered design's drain program.

A scheduled rule starts an instance every period. Each instance keeps polling for its execution
baseline, then goes on only while the last cycle published something and time remains for
another poll, so under load several instances overlap and drain in parallel.
"""

from __future__ import annotations

from typing import Any

from sim.drain.cycle import drain_cycle, time_for_another_poll
from sim.drain.effects import DrainOutcome, DrainProgram, InvocationContext, StopReason
from sim.drain.params import TimerParams

# Key of the per-environment state where the environment's load time is kept.
ENVIRONMENT_LOADED_AT_KEY = "loaded_at_s"


def timer_drain(
    params: TimerParams, context: InvocationContext, environment_state: dict[str, Any]
) -> DrainProgram:
    """Drain for the baseline, then while messages keep coming, until near the timeout.

    ``environment_state`` survives between invocations on one execution environment, like
    module-level variables in a deployed function.
    """
    started_at_s = context.clock_s()
    loaded_at_s = environment_state.setdefault(ENVIRONMENT_LOADED_AT_KEY, started_at_s)
    baseline_from_s = loaded_at_s if params.baseline_from_environment else started_at_s
    poll = params.poll
    cycles = received = published = 0

    while True:
        if not time_for_another_poll(context.get_remaining_time_in_millis(), poll):
            return DrainOutcome(StopReason.NEAR_TIMEOUT, cycles, received, published)

        cycle_received, cycle_published = yield from drain_cycle(poll)
        cycles += 1
        received += cycle_received
        published += cycle_published

        within_baseline = context.clock_s() - baseline_from_s < params.baseline_s
        if not within_baseline and cycle_published == 0:
            return DrainOutcome(StopReason.IDLE_AFTER_BASELINE, cycles, received, published)
