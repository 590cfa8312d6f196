"""Parameters of the drain programs, as plain data a deployed handler can build from its environment."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PollParams:
    """Settings of each receive, publish and delete cycle."""

    batch_size: int = 10
    wait_s: int = 3
    visibility_timeout_s: int | None = None
    # Time kept free before the timeout; no poll starts unless wait_s plus this margin remain.
    safety_margin_s: float = 2.0
    publish_batch: bool = True
    delete_batch: bool = True


@dataclass(frozen=True, slots=True)
class TimerParams:
    """The timer-triggered design: poll for a baseline, then go on while messages keep coming."""

    poll: PollParams
    baseline_s: float = 60.0
    # True: the baseline starts when the execution environment loads, as in the production code
    # this design comes from. False: it starts with each invocation.
    baseline_from_environment: bool = False


@dataclass(frozen=True, slots=True)
class RecursiveParams:
    """The recursive design: drain until near the timeout, then invoke itself."""

    poll: PollParams
