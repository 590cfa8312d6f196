"""Independent random streams for every stochastic component of a run, all from one seed.

Each component's stream is keyed by its name, not by creation order. So the same component gets
the same numbers in every design of a comparison (common random numbers), and adding a component
does not shift the others.
"""

from __future__ import annotations

import numpy as np

# Append new names at the end: a stream's key is its position here.
COMPONENTS = (
    "workload",
    "sqs",
    "sns",
    "lambda",
    "init",
    "idle",
    "dispatch",
    "eventbridge",
    "eventbridge_jitter",
    "eventbridge_delivery",
    "latency_receive",
    "latency_publish",
    "latency_publish_batch",
    "latency_delete",
    "latency_delete_batch",
    "latency_invoke",
)


def component_rng(seed: int, component: str) -> np.random.Generator:
    """Return the generator of ``component`` for a run with ``seed``."""
    key = COMPONENTS.index(component)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(key,))))


def component_rngs(seed: int) -> dict[str, np.random.Generator]:
    """Return a fresh generator for every component."""
    return {name: component_rng(seed, name) for name in COMPONENTS}
