"""Exact traces of the EventBridge scheduled rule: fire times, the run's end and duplicates."""

from __future__ import annotations

from typing import Any

import pytest
import simpy

from sim.eventbridge import ScheduledRule
from sim.randomness import component_rngs
from sim.scenario import EventBridgeSettings


def run_rule(
    period_s: float, until_s: float, run_to_s: float = 100.0, **settings: Any
) -> tuple[ScheduledRule, list[float]]:
    """Run a rule that fires before ``until_s`` and return it with the times its target was called."""
    env = simpy.Environment()
    calls: list[float] = []
    rule = ScheduledRule(
        env, period_s, EventBridgeSettings(**settings), lambda: calls.append(env.now), component_rngs(1)
    )
    env.process(rule.run(until_s))
    env.run(until=run_to_s)
    return rule, calls


def test_rule_fires_at_period_multiples_plus_offset():
    rule, calls = run_rule(10.0, until_s=30.0, offset_s=7, jitter_s=0, delivery_delay_s=0.5)

    assert calls == pytest.approx([7.5, 17.5, 27.5])
    assert rule.fires == 3


def test_rule_never_fires_at_or_after_until():
    """Fires are due at 0, 10, 20 and 30 s; the one at until_s = 30 s is not made."""
    rule, calls = run_rule(10.0, until_s=30.0, offset_s=0, jitter_s=0, delivery_delay_s=0)

    assert calls == [0.0, 10.0, 20.0]
    assert rule.fires == 3


def test_rule_jitter_past_until_skips_fire():
    """With 5 s of jitter the third fire would come at 25 s, which is not before until_s = 24 s."""
    _, calls = run_rule(10.0, until_s=24.0, offset_s=0, jitter_s=5, delivery_delay_s=0)

    assert calls == [5.0, 15.0]


def test_rule_delivers_after_until_when_fired_before():
    """A fire before until_s is still delivered when its delivery delay ends after until_s."""
    _, calls = run_rule(10.0, until_s=25.0, offset_s=0, jitter_s=0, delivery_delay_s=8)

    assert calls == [8.0, 18.0, 28.0]


def test_rule_duplicate_probability_one_doubles_deliveries():
    rule, calls = run_rule(
        10.0, until_s=30.0, offset_s=0, jitter_s=0, delivery_delay_s=1, duplicate_probability=1.0
    )

    assert calls == [1.0, 1.0, 11.0, 11.0, 21.0, 21.0]
    assert rule.fires == 3
    assert rule.duplicate_fires == 3


def test_rule_jitter_and_delivery_delay_add_up():
    """Offset 1 s, jitter 2 s and delivery delay 3 s put each target call 6 s into its period."""
    _, calls = run_rule(10.0, until_s=30.0, offset_s=1, jitter_s=2, delivery_delay_s=3)

    assert calls == [6.0, 16.0, 26.0]
