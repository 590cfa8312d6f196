"""Whole-run behaviour: the decision record's claim, chain limits, timeout kills and a closed form."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim.runner import run_scenario
from sim.scenario import Scenario, load_scenario

REPOSITORY = Path(__file__).resolve().parent.parent


def scenario(**overrides: Any) -> Scenario:
    data: dict[str, Any] = {
        "name": "claims",
        "seed": 3,
        "duration_s": 600,
        "drain_s": 120,
        "workload": {"kind": "flat", "rate_per_s": 5, "delay_s": {"low": 0, "high": 120}},
        "lambda": {"init_duration_ms": 200},
        "eventbridge": {"delivery_delay_s": 0},
        "designs": {"timer": {"kind": "timer"}},
    }
    data.update(overrides)
    return Scenario.model_validate(data)


@pytest.mark.slow
def test_bursty_recursive_p99_exceeds_timer():
    result = run_scenario(load_scenario(REPOSITORY / "scenarios" / "bursty.toml"))
    designs = result.summary["designs"]

    recursive_p99 = designs["recursive"]["lateness_s"]["p99"]
    timer_p99 = designs["timer"]["lateness_s"]["p99"]

    assert recursive_p99 > timer_p99
    # Not a close call: the serial chain falls behind by far more than the timer instances.
    assert recursive_p99 > 10 * timer_p99


def test_timer_instances_at_most_timeout_over_period():
    # A constant trickle keeps every instance busy until near its timeout, so they overlap fully.
    run = scenario(
        duration_s=1800,
        designs={"timer": {"kind": "timer", "period_s": 60, "baseline_s": 60, "timeout_s": 300}},
    )

    summary = run_scenario(run).summary["designs"]["timer"]

    assert summary["concurrency"]["peak"] == math.ceil(300 / 60)
    assert summary["invocations"]["retry"] == 0


def test_timer_bound_grows_only_by_retries_and_duplicates():
    run = scenario(
        duration_s=1800,
        designs={"timer": {"kind": "timer", "period_s": 60, "baseline_s": 60, "timeout_s": 300}},
        eventbridge={"delivery_delay_s": 0, "duplicate_probability": 0.2},
        **{"lambda": {"init_duration_ms": 200, "failure_probability": 0.3}},
    )

    summary = run_scenario(run).summary["designs"]["timer"]
    extra = summary["invocations"]["retry"] + summary["duplicate_fires"]

    assert extra > 0
    assert summary["concurrency"]["peak"] <= math.ceil(300 / 60) + extra


def test_loop_detection_stops_chain_at_16():
    run = scenario(
        duration_s=600,
        drain_s=0,
        designs={"chain": {"kind": "recursive", "timeout_s": 20, "wait_s": 1, "safety_margin_s": 2}},
    )

    result = run_scenario(run)
    summary = result.summary["designs"]["chain"]

    assert summary["invocations"]["total"] == 16
    assert summary["invocations"]["start"] == 1
    assert summary["invocations"]["self"] == 15
    assert summary["dropped_events"] == {"recursive_loop": 1}
    assert result.invocations["chain_depth"].max() == 16
    # The chain is dead after about 16 x 20 s: messages due later stay queued.
    assert summary["undelivered"]["queued"] > 0


def test_allowed_recursion_keeps_chain_alive():
    run = scenario(
        duration_s=600,
        drain_s=0,
        designs={"chain": {"kind": "recursive", "timeout_s": 20, "wait_s": 1, "safety_margin_s": 2, "allow_recursion": True}},
    )

    summary = run_scenario(run).summary["designs"]["chain"]

    assert summary["invocations"]["total"] > 25
    assert summary["dropped_events"] == {}


def test_watchdog_restarts_dead_chain():
    run = scenario(
        duration_s=900,
        drain_s=0,
        designs={
            "chain": {"kind": "recursive", "timeout_s": 20, "wait_s": 1, "safety_margin_s": 2, "watchdog_period_s": 60}
        },
    )

    summary = run_scenario(run).summary["designs"]["chain"]

    assert summary["watchdog_restarts"] >= 1
    assert summary["invocations"]["watchdog"] == summary["watchdog_restarts"]
    assert summary["invocations"]["total"] > 16


def test_dead_chain_stays_dead_after_errors():
    # Every invocation raises. One that raises after handing over lets the chain go on, and its
    # retries fork it. Once every branch's event has failed three times, the chain is gone.
    run = scenario(
        duration_s=3600,
        designs={"chain": {"kind": "recursive", "timeout_s": 60, "wait_s": 1}},
        **{"lambda": {"init_duration_ms": 200, "failure_probability": 1.0}},
    )

    result = run_scenario(run)
    summary = result.summary["designs"]["chain"]
    invocations = result.invocations

    assert set(summary["dropped_events"]) == {"retries_exhausted"}
    assert (invocations["end_reason"] == "error").all()
    assert invocations["end_at_s"].max() < result.summary["end_at_s"] - 600
    assert summary["undelivered"]["queued"] > 0
    retries = invocations[invocations["trigger"] == "retry"].sort_values("start_at_s")
    assert (retries["attempt"].isin([1, 2])).all()


def test_timeout_kill_makes_messages_late_not_lost():
    # Publish calls sometimes take longer than the time left, so Lambda stops the invocation
    # with received messages still undeleted. They reappear and a later instance publishes them.
    run = scenario(
        duration_s=600,
        drain_s=300,
        queue={"visibility_timeout_s": 15},
        api_latency={"publish_batch_ms": {"kind": "uniform", "low": 5, "high": 9000}},
        designs={"timer": {"kind": "timer", "period_s": 10, "baseline_s": 10, "timeout_s": 20, "wait_s": 1, "safety_margin_s": 1}},
    )

    result = run_scenario(run)
    summary = result.summary["designs"]["timer"]
    messages = result.messages

    assert summary["timeouts"] > 0
    assert summary["undelivered"]["total"] == 0
    received_again = messages[messages["receive_count"] >= 2]
    assert len(received_again) > 0
    assert (received_again["final_state"] == "delivered").all()


def test_quiet_queue_lateness_is_two_latencies():
    # With a poll always waiting, a message is received the instant it is due, so its lateness is
    # exactly the ReceiveMessage latency plus the PublishBatch latency. Arrivals come every 7 s,
    # off the 3 s poll rhythm, and the median message falls in a waiting poll.
    run = scenario(
        duration_s=700,
        workload={"kind": "flat", "rate_per_s": 1 / 7, "arrival": "even", "delay_s": 0},
        api_latency={"receive_ms": 10, "publish_batch_ms": 20, "delete_batch_ms": 5},
        designs={"timer": {"kind": "timer", "period_s": 60, "baseline_s": 60, "timeout_s": 300}},
    )

    messages = run_scenario(run).messages
    # The first messages fall due before the first instance has started and polled.
    lateness = messages.loc[messages["due_at_s"] > 10, "lateness_s"].to_numpy()

    assert not np.isnan(lateness).any()
    assert np.median(lateness) == pytest.approx(0.030, abs=1e-9)
    # Only arrivals in the short gaps between polls wait longer, by less than one cycle.
    assert np.quantile(lateness, 0.8) == pytest.approx(0.030, abs=1e-9)
    assert lateness.max() < 0.030 + 0.010 + 0.020 + 0.005 + 0.2 + 1e-9


def test_timer_fires_accounted_under_throttling():
    # With a concurrency limit of 1, fires wait in the asynchronous queue; every fire is either an
    # invocation, still pending at the end, or dropped.
    run = scenario(
        duration_s=900,
        designs={"timer": {"kind": "timer", "period_s": 10, "baseline_s": 10, "timeout_s": 60}},
        **{"lambda": {"init_duration_ms": 200, "concurrency_limit": 1}},
    )

    summary = run_scenario(run).summary["designs"]["timer"]
    dropped = sum(summary["dropped_events"].values())

    assert summary["throttles"] > 0
    assert summary["timer_fires"] == summary["invocations"]["timer"] + summary["pending_events"] + dropped
