"""Drain logic shared by the simulator and by real Lambda handlers.

Nothing here imports simpy, numpy or pandas: the same programs run inside the simulation and,
driven by boto3, as deployed functions.
"""

from sim.drain.effects import (
    Delete,
    DrainOutcome,
    DrainProgram,
    Effect,
    InvocationContext,
    InvokeSelf,
    Message,
    Publish,
    PublishOutcome,
    Receive,
    StopReason,
)
from sim.drain.params import PollParams, RecursiveParams, TimerParams
from sim.drain.recursive import recursive_drain
from sim.drain.timer import timer_drain

__all__ = [
    "Delete",
    "DrainOutcome",
    "DrainProgram",
    "Effect",
    "InvocationContext",
    "InvokeSelf",
    "Message",
    "PollParams",
    "Publish",
    "PublishOutcome",
    "Receive",
    "RecursiveParams",
    "StopReason",
    "TimerParams",
    "recursive_drain",
    "timer_drain",
]
