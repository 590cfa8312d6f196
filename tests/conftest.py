"""Builders shared by the model tests: hand-made arrivals, fixed latencies and a wired function."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import simpy

from sim.engine import SimulatedEffects
from sim.lambda_service import INVOCATION_COLUMNS, LambdaFunction, LambdaRecords, ProgramFactory
from sim.randomness import component_rngs
from sim.scenario import ApiLatencySettings, LambdaSettings, QueueSettings
from sim.sns import SnsTopic
from sim.sqs import SqsQueue
from sim.workload import Arrivals


def make_arrivals(due_at_s: Sequence[float], delay_s: Sequence[int] | None = None) -> Arrivals:
    """Build arrivals from due times in ascending order. Each send time is the due time minus the delay."""
    due = np.asarray(due_at_s, dtype=np.float64)
    delays = np.zeros(len(due), dtype=np.int32) if delay_s is None else np.asarray(delay_s, dtype=np.int32)
    return Arrivals(send_at_s=due - delays, delay_s=delays, due_at_s=due)


def zero_latency(**overrides_ms: Any) -> ApiLatencySettings:
    """Return API latencies fixed at 0 ms, except the keys given in milliseconds."""
    keys = ApiLatencySettings.model_fields
    return ApiLatencySettings(**{key: overrides_ms.get(key, 0) for key in keys})


def lambda_settings(**overrides: Any) -> LambdaSettings:
    """Return Lambda settings with no Init phase and no dispatch delay, unless overridden."""
    values: dict[str, Any] = {"init_duration_ms": 0, "async_dispatch_delay_ms": 0}
    values.update(overrides)
    return LambdaSettings(**values)


@dataclass
class World:
    """One function wired to its queue and topic through a real SimulatedEffects."""

    env: simpy.Environment
    queue: SqsQueue
    topic: SnsTopic
    function: LambdaFunction
    effects: SimulatedEffects


def build_world(
    program_factory: ProgramFactory,
    arrivals: Arrivals | None = None,
    queue: QueueSettings | None = None,
    lambda_: LambdaSettings | None = None,
    latency: ApiLatencySettings | None = None,
    timeout_s: float = 60.0,
    allow_recursion: bool = True,
    seed: int = 1,
) -> World:
    """Wire the models the way simulate_design does, on an empty queue unless arrivals are given."""
    env = simpy.Environment()
    rngs = component_rngs(seed)
    arrivals = make_arrivals([]) if arrivals is None else arrivals
    sqs = SqsQueue(env, arrivals, queue or QueueSettings(), rngs["sqs"])
    topic = SnsTopic(len(arrivals), 0.0, rngs["sns"])
    function = LambdaFunction(
        env,
        lambda_ or lambda_settings(),
        timeout_s,
        allow_recursion=allow_recursion,
        program_factory=program_factory,
        rngs=rngs,
    )
    effects = SimulatedEffects(env, sqs, topic, function, latency or zero_latency(), rngs)
    function.effect_handlers = effects.handler_for
    return World(env, sqs, topic, function, effects)


def invocation_rows(records: LambdaRecords) -> list[dict[str, Any]]:
    """Return the recorded invocations as dicts keyed by INVOCATION_COLUMNS, in end order."""
    return [dict(zip(INVOCATION_COLUMNS, row)) for row in records.invocations]
