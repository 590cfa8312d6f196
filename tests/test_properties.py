"""Invariants that hold for any small scenario, checked with hypothesis."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.runner import run_scenario
from sim.scenario import Scenario

FINAL_STATES = {"delivered", "queued", "in_flight", "dlq", "expired"}


@st.composite
def small_scenarios(draw: st.DrawFn) -> dict[str, Any]:
    duration_s = draw(st.integers(20, 120))
    timeout_s = draw(st.integers(8, 60))
    wait_s = draw(st.integers(0, 5))
    margin_s = draw(st.floats(0.5, 2.0))
    baseline_s = draw(st.integers(1, timeout_s - 1))
    poll = {
        "timeout_s": timeout_s,
        "wait_s": wait_s,
        "safety_margin_s": margin_s,
        "batch_size": draw(st.integers(1, 10)),
        "publish_api": draw(st.sampled_from(["batch", "single"])),
        "delete_api": draw(st.sampled_from(["batch", "single"])),
    }
    workload = draw(
        st.one_of(
            st.builds(
                dict,
                kind=st.just("flat"),
                rate_per_s=st.floats(0.2, 20),
                arrival=st.sampled_from(["poisson", "even"]),
                delay_s=st.integers(0, 30),
            ),
            st.builds(
                dict,
                kind=st.just("bursty"),
                base_rate_per_s=st.floats(0, 5),
                burst_rate_per_s=st.floats(0, 50),
                burst_length_s=st.integers(1, 10),
                burst_period_s=st.integers(10, 40),
                herd_size=st.integers(1, 50),
                herd_period_s=st.integers(5, 30),
                delay_s=st.builds(dict, low=st.just(0), high=st.integers(0, 60)),
            ),
        )
    )
    designs = {
        "recursive": {
            "kind": "recursive",
            **poll,
            "allow_recursion": draw(st.booleans()),
            "chains": draw(st.integers(1, 3)),
        },
        "timer": {
            "kind": "timer",
            **poll,
            "period_s": draw(st.integers(2, 30)),
            "baseline_s": baseline_s,
            "baseline_clock": draw(st.sampled_from(["invocation", "environment"])),
        },
    }
    return {
        "name": "property",
        "seed": draw(st.integers(0, 2**32)),
        "duration_s": duration_s,
        "drain_s": draw(st.integers(0, 60)),
        "workload": workload,
        "queue": {
            "visibility_timeout_s": draw(st.integers(0, 20)),
            "retention_s": draw(st.integers(60, 200)),
            "max_receive_count": draw(st.one_of(st.none(), st.integers(1, 3))),
            "short_poll_miss_probability": draw(st.floats(0, 1)),
            "long_poll_empty_probability": draw(st.sampled_from([0.0, 0.1])),
            "duplicate_probability": draw(st.sampled_from([0.0, 0.2])),
        },
        "sns": {"failure_probability": draw(st.sampled_from([0.0, 0.1, 0.5]))},
        "lambda": {
            "concurrency_limit": draw(st.integers(1, 4)),
            "failure_probability": draw(st.sampled_from([0.0, 0.2])),
            "max_retry_attempts": draw(st.integers(0, 2)),
            "async_duplicate_probability": draw(st.sampled_from([0.0, 0.3])),
            "bill_init": draw(st.booleans()),
        },
        "eventbridge": {"duplicate_probability": draw(st.sampled_from([0.0, 0.3]))},
        "designs": designs,
    }


SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)


@SETTINGS
@given(small_scenarios())
def test_messages_are_conserved(data):
    scenario = Scenario.model_validate(data)
    result = run_scenario(scenario)

    for name, design in result.summary["designs"].items():
        undelivered = design["undelivered"]
        accounted = undelivered["queued"] + undelivered["in_flight"] + undelivered["dlq"] + undelivered["expired"]
        assert design["delivered"] + accounted == design["messages"], name
        assert undelivered["total"] == accounted, name
        states = set(result.messages.loc[result.messages["design"] == name, "final_state"])
        assert states <= FINAL_STATES, name


@SETTINGS
@given(small_scenarios())
def test_lateness_never_negative(data):
    result = run_scenario(Scenario.model_validate(data))

    lateness = result.messages["lateness_s"].to_numpy()
    delivered = lateness[~np.isnan(lateness)]

    assert (delivered >= 0).all()
    published = result.messages["first_publish_at_s"].notna()
    assert (result.messages.loc[published, "first_receive_at_s"] <= result.messages.loc[published, "first_publish_at_s"]).all()


@SETTINGS
@given(small_scenarios())
def test_concurrency_never_above_limit(data):
    scenario = Scenario.model_validate(data)
    result = run_scenario(scenario)

    limit = scenario.lambda_.concurrency_limit
    assert (result.concurrency["concurrency"] <= limit).all()
    for design in result.summary["designs"].values():
        assert design["concurrency"]["peak"] <= limit


@SETTINGS
@given(small_scenarios())
def test_billed_time_covers_run_time(data):
    scenario = Scenario.model_validate(data)
    result = run_scenario(scenario)

    invocations = result.invocations
    run_ms = (invocations["end_at_s"] - invocations["start_at_s"]) * 1000.0
    if not scenario.lambda_.bill_init:
        run_ms = run_ms - invocations["init_ms"]
    # One millisecond of slack: billing rounds up, but float sums may land a hair above.
    assert (invocations["billed_ms"] >= run_ms - 1e-6).all()
    assert (invocations["billed_ms"] <= run_ms + 2).all()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(small_scenarios())
def test_same_seed_same_results(data):
    scenario = Scenario.model_validate(data)

    first = run_scenario(scenario)
    second = run_scenario(scenario)

    assert first.summary == second.summary
    assert first.messages.equals(second.messages)
    assert first.invocations.equals(second.invocations)


@SETTINGS
@given(small_scenarios())
def test_timer_instances_bounded(data):
    scenario = Scenario.model_validate(data)
    result = run_scenario(scenario, ["timer"])
    design = scenario.designs["timer"]
    summary = result.summary["designs"]["timer"]

    invocations = result.invocations
    extra = summary["invocations"]["retry"] + summary["duplicate_fires"] + summary["async_duplicates"]
    # An instance runs at most its init (under 10 s) plus its timeout.
    bound = math.ceil((design.timeout_s + 10) / design.period_s) + extra
    assert summary["concurrency"]["peak"] <= bound
    assert len(invocations) <= summary["timer_fires"] + extra
