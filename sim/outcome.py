"""The engine-neutral outcome of one design's run: what the simulator or a live run measured.

Statistics, tables and plots are computed from this record alone, so simulated and live runs are
summarized by the same code.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.scenario import RecursiveDesign, TimerDesign


@dataclass
class DesignOutcome:
    """Per-message arrays (indexed like the run's arrivals), invocation records and counters."""

    name: str
    design: RecursiveDesign | TimerDesign
    end_at_s: float
    first_receive_at_s: np.ndarray
    receive_count: np.ndarray
    first_publish_at_s: np.ndarray
    publish_count: np.ndarray
    # MessageState values at the end of the run, retention expiry applied.
    final_states: np.ndarray
    # Tuples in the order of sim.lambda_service.INVOCATION_COLUMNS.
    invocations: list[tuple[Any, ...]]
    # (at_s, concurrency) after each change, in time order.
    concurrency: list[tuple[float, int]]
    sqs_requests: Counter[str]
    sns_requests: Counter[str]
    throttles: int = 0
    dropped_events: Counter[str] = field(default_factory=Counter)
    async_duplicates: int = 0
    pending_events: int = 0
    timer_fires: int = 0
    duplicate_fires: int = 0
    watchdog_restarts: int = 0
    dlq_moves: int = 0
