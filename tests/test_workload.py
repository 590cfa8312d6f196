"""Tests of sim.workload: due times, delays and send times of flat, bursty and trace workloads."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import limits
from sim.errors import ScenarioError, UserInputError
from sim.scenario import Scenario
from sim.workload import Arrivals, _schedule, estimate_message_count, generate_arrivals

# Closed-form checks accept a value this many standard deviations from its mean. Under the normal
# approximation a correct generator fails one check with probability of about 6e-7, and the
# seeds are fixed, so a passing test keeps passing.
SIGMAS = 5


def make_scenario(workload: dict[str, Any], duration_s: float = 3600.0) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "test",
            "seed": 1,
            "duration_s": duration_s,
            "workload": workload,
            "designs": {"timer": {"kind": "timer"}},
        }
    )


def trace_scenario(
    tmp_path: Path, path: str, duration_s: float = 3600.0, **settings_: Any
) -> Scenario:
    workload = {"kind": "trace", "path": path, **settings_}
    return make_scenario(workload, duration_s).with_source(tmp_path / "s.toml")


def generate(scenario: Scenario, seed: int = 1) -> Arrivals:
    return generate_arrivals(scenario, np.random.default_rng(seed))


def write_csv(tmp_path: Path, text: str, name: str = "trace.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def trace_error(tmp_path: Path, text: str, **settings_: Any) -> str:
    """Write a CSV trace, generate from it and return the ScenarioError message."""
    path = write_csv(tmp_path, text)
    scenario = trace_scenario(tmp_path, path.name, **settings_)
    with pytest.raises(ScenarioError) as caught:
        generate(scenario)
    return str(caught.value)


def assert_invariants(arrivals: Arrivals, duration_s: float) -> None:
    assert arrivals.send_at_s.dtype == np.float64
    assert arrivals.delay_s.dtype == np.int32
    assert arrivals.due_at_s.dtype == np.float64
    assert np.all(np.diff(arrivals.due_at_s) >= 0)
    assert np.array_equal(arrivals.due_at_s, arrivals.send_at_s + arrivals.delay_s)
    assert np.all(arrivals.delay_s >= 0)
    assert np.all(arrivals.delay_s <= limits.MAX_DELAY_S)
    assert np.all(arrivals.send_at_s >= 0)
    assert np.all(arrivals.due_at_s >= 0)
    assert np.all(arrivals.due_at_s < duration_s)


# ---------------------------------------------------------------------------------------------
# Arrivals


def test_arrivals_len_counts_messages():
    arrivals = Arrivals(send_at_s=[0.0, 1.0], delay_s=[5, 5], due_at_s=[5.0, 6.0])

    assert len(arrivals) == 2


def test_arrivals_converts_dtypes():
    arrivals = Arrivals(send_at_s=[0], delay_s=[5.0], due_at_s=[5])

    assert arrivals.send_at_s.dtype == np.float64
    assert arrivals.delay_s.dtype == np.int32
    assert arrivals.due_at_s.dtype == np.float64


def test_arrivals_arrays_read_only():
    arrivals = Arrivals(send_at_s=[0.0], delay_s=[5], due_at_s=[5.0])

    with pytest.raises(ValueError):
        arrivals.due_at_s[0] = 1.0


def test_arrivals_length_mismatch_rejected():
    with pytest.raises(ValueError, match="one length"):
        Arrivals(send_at_s=[0.0], delay_s=[5, 5], due_at_s=[5.0])


# ---------------------------------------------------------------------------------------------
# Exact small cases


def test_flat_even_exact_times():
    scenario = make_scenario({"kind": "flat", "rate_per_s": 4, "arrival": "even"}, 2.0)

    arrivals = generate(scenario)

    assert np.array_equal(arrivals.due_at_s, np.arange(0, 2, 0.25))
    assert np.array_equal(arrivals.send_at_s, arrivals.due_at_s)
    assert np.all(arrivals.delay_s == 0)


def test_flat_even_excludes_duration():
    scenario = make_scenario({"kind": "flat", "rate_per_s": 1, "arrival": "even"}, 3.0)

    arrivals = generate(scenario)

    assert arrivals.due_at_s.tolist() == [0.0, 1.0, 2.0]


def test_flat_even_third_rate():
    scenario = make_scenario({"kind": "flat", "rate_per_s": 3, "arrival": "even"}, 1.0)

    arrivals = generate(scenario)

    assert arrivals.due_at_s.tolist() == [0.0, 1 / 3, 2 / 3]


def test_flat_fixed_delay_shifts_send():
    workload = {"kind": "flat", "rate_per_s": 1, "arrival": "even", "delay_s": 60}
    scenario = make_scenario(workload, 100.0)

    arrivals = generate(scenario)

    late = arrivals.due_at_s >= 60
    assert np.all(arrivals.delay_s[late] == 60)
    assert np.array_equal(arrivals.send_at_s[late], arrivals.due_at_s[late] - 60)


def test_delay_clipped_at_start():
    workload = {"kind": "flat", "rate_per_s": 1, "arrival": "even", "delay_s": 5}
    scenario = make_scenario(workload, 10.0)

    arrivals = generate(scenario)

    assert arrivals.due_at_s.tolist() == [float(i) for i in range(10)]
    assert arrivals.delay_s.tolist() == [0, 1, 2, 3, 4, 5, 5, 5, 5, 5]
    assert arrivals.send_at_s.tolist() == [0.0] * 6 + [1.0, 2.0, 3.0, 4.0]


def test_delay_clipped_to_floor_of_fractional_due():
    workload = {"kind": "flat", "rate_per_s": 2, "arrival": "even", "delay_s": 900}
    scenario = make_scenario(workload, 2.5)

    arrivals = generate(scenario)

    assert arrivals.due_at_s.tolist() == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert arrivals.delay_s.tolist() == [0, 0, 1, 1, 2]
    assert arrivals.send_at_s.tolist() == [0.0, 0.5, 0.0, 0.5, 0.0]


def test_herd_at_exact_multiples():
    workload = {"kind": "bursty", "herd_size": 3, "herd_period_s": 60}
    scenario = make_scenario(workload, 240.0)

    arrivals = generate(scenario)

    assert arrivals.due_at_s.tolist() == [60.0] * 3 + [120.0] * 3 + [180.0] * 3


def test_herd_fractional_period_exact():
    workload = {"kind": "bursty", "herd_size": 2, "herd_period_s": 0.1}
    scenario = make_scenario(workload, 0.35)

    arrivals = generate(scenario)

    assert arrivals.due_at_s.tolist() == [0.1, 0.1, 2 * 0.1, 2 * 0.1, 3 * 0.1, 3 * 0.1]


def test_herd_none_when_period_exceeds_duration():
    workload = {"kind": "bursty", "herd_size": 5, "herd_period_s": 60}
    scenario = make_scenario(workload, 60.0)

    arrivals = generate(scenario)

    assert len(arrivals) == 0


def test_bursty_even_burst_times():
    workload = {
        "kind": "bursty",
        "arrival": "even",
        "burst_rate_per_s": 2,
        "burst_length_s": 2,
        "burst_period_s": 10,
        "burst_start_s": 1,
    }
    scenario = make_scenario(workload, 25.0)

    arrivals = generate(scenario)

    expected = [1, 1.5, 2, 2.5, 11, 11.5, 12, 12.5, 21, 21.5, 22, 22.5]
    assert arrivals.due_at_s.tolist() == expected


def test_bursty_even_last_burst_clipped():
    workload = {
        "kind": "bursty",
        "arrival": "even",
        "burst_rate_per_s": 2,
        "burst_length_s": 2,
        "burst_period_s": 10,
        "burst_start_s": 1,
    }
    scenario = make_scenario(workload, 22.0)

    arrivals = generate(scenario)

    assert arrivals.due_at_s.tolist() == [1, 1.5, 2, 2.5, 11, 11.5, 12, 12.5, 21, 21.5]


def test_bursty_even_union_of_parts():
    workload = {
        "kind": "bursty",
        "arrival": "even",
        "base_rate_per_s": 1,
        "burst_rate_per_s": 1,
        "burst_length_s": 2,
        "burst_period_s": 10,
        "burst_start_s": 5,
        "herd_size": 2,
        "herd_period_s": 4,
    }
    scenario = make_scenario(workload, 10.0)

    arrivals = generate(scenario)

    base = list(range(10))
    bursts = [5, 6]
    herd = [4, 4, 8, 8]
    assert arrivals.due_at_s.tolist() == sorted(float(t) for t in base + bursts + herd)


def test_burst_start_after_duration_adds_nothing():
    workload = {
        "kind": "bursty",
        "arrival": "even",
        "base_rate_per_s": 1,
        "burst_rate_per_s": 100,
        "burst_length_s": 10,
        "burst_start_s": 50,
    }
    scenario = make_scenario(workload, 50.0)

    arrivals = generate(scenario)

    assert arrivals.due_at_s.tolist() == [float(i) for i in range(50)]


def test_bursty_continuous_bursts_tile():
    workload = {
        "kind": "bursty",
        "arrival": "even",
        "burst_rate_per_s": 1,
        "burst_length_s": 3,
        "burst_period_s": 3,
    }
    scenario = make_scenario(workload, 9.0)

    arrivals = generate(scenario)

    assert arrivals.due_at_s.tolist() == [float(i) for i in range(9)]


def test_schedule_keeps_due_bit_exact():
    rng = np.random.default_rng(7)
    due = np.sort(rng.random(100_000) * 2_000_000.0)
    delays = rng.integers(0, limits.MAX_DELAY_S, size=due.size, endpoint=True)

    arrivals = _schedule(due, delays)

    assert np.array_equal(arrivals.due_at_s, due)


# ---------------------------------------------------------------------------------------------
# Determinism


FLAT_UNIFORM = {"kind": "flat", "rate_per_s": 10, "delay_s": {"low": 0, "high": 900}}
BURSTY_UNIFORM = {
    "kind": "bursty",
    "base_rate_per_s": 2,
    "burst_rate_per_s": 20,
    "burst_length_s": 30,
    "burst_period_s": 300,
    "herd_size": 10,
    "delay_s": {"low": 0, "high": 900},
}


@pytest.mark.parametrize("workload", [FLAT_UNIFORM, BURSTY_UNIFORM], ids=["flat", "bursty"])
def test_same_seed_identical(workload):
    scenario = make_scenario(workload)

    first = generate(scenario, seed=42)
    second = generate(scenario, seed=42)

    assert np.array_equal(first.send_at_s, second.send_at_s)
    assert np.array_equal(first.delay_s, second.delay_s)
    assert np.array_equal(first.due_at_s, second.due_at_s)


@pytest.mark.parametrize("workload", [FLAT_UNIFORM, BURSTY_UNIFORM], ids=["flat", "bursty"])
def test_different_seed_differs(workload):
    scenario = make_scenario(workload)

    first = generate(scenario, seed=42)
    second = generate(scenario, seed=43)

    # array_equal is False for arrays of different lengths too.
    assert not np.array_equal(first.due_at_s, second.due_at_s)
    assert not np.array_equal(first.delay_s, second.delay_s)


def test_trace_uniform_delay_seeded(tmp_path):
    write_csv(tmp_path, "due_at_s\n" + "\n".join(str(900 + i) for i in range(200)) + "\n")
    scenario = trace_scenario(tmp_path, "trace.csv", delay_s={"low": 0, "high": 900})

    first = generate(scenario, seed=5)
    second = generate(scenario, seed=5)
    third = generate(scenario, seed=6)

    assert np.array_equal(first.delay_s, second.delay_s)
    assert not np.array_equal(first.delay_s, third.delay_s)


# ---------------------------------------------------------------------------------------------
# Closed-form checks


def test_flat_poisson_count_near_mean():
    scenario = make_scenario({"kind": "flat", "rate_per_s": 100}, 3600.0)
    mean = 100 * 3600.0

    arrivals = generate(scenario)

    assert abs(len(arrivals) - mean) < SIGMAS * math.sqrt(mean)


def test_flat_poisson_times_uniform():
    duration_s = 1000.0
    scenario = make_scenario({"kind": "flat", "rate_per_s": 50}, duration_s)

    arrivals = generate(scenario)

    # The mean of n uniforms on [0, d) has standard deviation d / sqrt(12 n).
    sigma = duration_s / math.sqrt(12 * len(arrivals))
    assert abs(arrivals.due_at_s.mean() - duration_s / 2) < SIGMAS * sigma
    counts, _ = np.histogram(arrivals.due_at_s, bins=10, range=(0, duration_s))
    expected = len(arrivals) / 10
    assert np.all(np.abs(counts - expected) < SIGMAS * math.sqrt(expected))


def test_burst_windows_expected_counts():
    workload = {
        "kind": "bursty",
        "base_rate_per_s": 10,
        "burst_rate_per_s": 100,
        "burst_length_s": 30,
        "burst_period_s": 300,
        "burst_start_s": 60,
    }
    scenario = make_scenario(workload, 3600.0)
    starts = 60 + 300 * np.arange(12)

    arrivals = generate(scenario)

    due = arrivals.due_at_s
    window = np.zeros(len(due), dtype=bool)
    for start in starts:
        window |= (due >= start) & (due < start + 30)
    inside_mean = (10 + 100) * 30 * 12
    outside_mean = 10 * (3600 - 30 * 12)
    assert abs(np.count_nonzero(window) - inside_mean) < SIGMAS * math.sqrt(inside_mean)
    assert abs(np.count_nonzero(~window) - outside_mean) < SIGMAS * math.sqrt(outside_mean)


def test_burst_poisson_last_window_clipped():
    workload = {
        "kind": "bursty",
        "burst_rate_per_s": 1000,
        "burst_length_s": 20,
        "burst_period_s": 100,
    }
    scenario = make_scenario(workload, 210.0)

    arrivals = generate(scenario)

    due = arrivals.due_at_s
    last = due[due >= 200]
    assert np.all(last < 210)
    assert abs(len(last) - 10_000) < SIGMAS * math.sqrt(10_000)
    assert np.count_nonzero((due >= 20) & (due < 100)) == 0
    assert np.count_nonzero((due >= 120) & (due < 200)) == 0


def test_uniform_delay_mean_and_ends():
    workload = {"kind": "flat", "rate_per_s": 100, "delay_s": {"low": 100, "high": 500}}
    scenario = make_scenario(workload, 3600.0)

    arrivals = generate(scenario)

    # Messages due after 500 s never have their delay clipped.
    delays = arrivals.delay_s[arrivals.due_at_s >= 500]
    sigma = math.sqrt((401**2 - 1) / 12 / len(delays))
    assert abs(delays.mean() - 300) < SIGMAS * sigma
    assert delays.min() == 100
    assert delays.max() == 500


def test_fixed_delay_no_randomness():
    workload = {"kind": "flat", "rate_per_s": 1, "arrival": "even", "delay_s": 30}
    scenario = make_scenario(workload, 100.0)

    first = generate(scenario, seed=1)
    second = generate(scenario, seed=2)

    assert np.array_equal(first.delay_s, second.delay_s)


# ---------------------------------------------------------------------------------------------
# Estimates


def test_estimate_flat_poisson_mean():
    scenario = make_scenario({"kind": "flat", "rate_per_s": 100}, 3600.0)

    assert estimate_message_count(scenario) == 360_000.0


def test_estimate_bursty_poisson_mean():
    workload = {
        "kind": "bursty",
        "base_rate_per_s": 10,
        "burst_rate_per_s": 100,
        "burst_length_s": 30,
        "burst_period_s": 300,
        "burst_start_s": 60,
        "herd_size": 1000,
        "herd_period_s": 60,
    }
    scenario = make_scenario(workload, 3600.0)

    expected = 10 * 3600 + 100 * 30 * 12 + 1000 * 59
    assert estimate_message_count(scenario) == pytest.approx(expected)


@pytest.mark.parametrize(
    "workload, duration_s",
    [
        ({"kind": "flat", "rate_per_s": 3, "arrival": "even"}, 10.0),
        ({"kind": "flat", "rate_per_s": 0.7, "arrival": "even"}, 100.0),
        (
            {
                "kind": "bursty",
                "arrival": "even",
                "base_rate_per_s": 0.5,
                "burst_rate_per_s": 3,
                "burst_length_s": 7,
                "burst_period_s": 11,
                "burst_start_s": 2,
                "herd_size": 4,
                "herd_period_s": 13,
            },
            100.0,
        ),
    ],
    ids=["flat", "flat-slow", "bursty"],
)
def test_estimate_even_exact(workload, duration_s):
    scenario = make_scenario(workload, duration_s)

    assert estimate_message_count(scenario) == len(generate(scenario))


@pytest.mark.parametrize("arrival", ["poisson", "even"])
def test_estimate_tiny_burst_period(arrival):
    workload = {
        "kind": "bursty",
        "arrival": arrival,
        "burst_rate_per_s": 10,
        "burst_length_s": 1e-300,
        "burst_period_s": 1e-300,
    }
    scenario = make_scenario(workload, 3600.0)

    expected = 36_000.0 if arrival == "poisson" else 3.6e303
    assert estimate_message_count(scenario) == pytest.approx(expected)


def test_estimate_trace_csv_rows(tmp_path):
    write_csv(tmp_path, "due_at_s\n1\n2\n3\n")
    scenario = trace_scenario(tmp_path, "trace.csv")

    assert estimate_message_count(scenario) == 3


def test_estimate_trace_csv_no_final_newline(tmp_path):
    write_csv(tmp_path, "due_at_s\n1\n2\n3")
    scenario = trace_scenario(tmp_path, "trace.csv")

    assert estimate_message_count(scenario) == 3


def test_estimate_trace_parquet_rows(tmp_path):
    pd.DataFrame({"due_at_s": [1.0, 2.0, 3.0, 4.0]}).to_parquet(tmp_path / "trace.parquet")
    scenario = trace_scenario(tmp_path, "trace.parquet")

    assert estimate_message_count(scenario) == 4


def test_estimate_trace_missing_file(tmp_path):
    scenario = trace_scenario(tmp_path, "absent.csv")

    with pytest.raises(ScenarioError, match="not found"):
        estimate_message_count(scenario)


def test_estimate_trace_garbled_parquet(tmp_path):
    (tmp_path / "trace.parquet").write_bytes(b"not a parquet file")
    scenario = trace_scenario(tmp_path, "trace.parquet")

    with pytest.raises(ScenarioError, match="cannot be read as Parquet"):
        estimate_message_count(scenario)


# ---------------------------------------------------------------------------------------------
# Properties

DELAYS = st.one_of(
    st.integers(0, limits.MAX_DELAY_S),
    st.tuples(st.integers(0, limits.MAX_DELAY_S), st.integers(0, limits.MAX_DELAY_S)).map(
        lambda pair: {"low": min(pair), "high": max(pair)}
    ),
)
ARRIVALS = st.sampled_from(["poisson", "even"])
DURATIONS = st.floats(0.5, 2000.0)


@st.composite
def flat_workloads(draw):
    return {
        "kind": "flat",
        "rate_per_s": draw(st.floats(0.01, 20.0)),
        "arrival": draw(ARRIVALS),
        "delay_s": draw(DELAYS),
    }


@st.composite
def bursty_workloads(draw):
    period = draw(st.floats(0.5, 500.0))
    workload = {
        "kind": "bursty",
        "base_rate_per_s": draw(st.sampled_from([0.0, 0.1, 1.5, 5.0])),
        "burst_rate_per_s": draw(st.floats(0.0, 30.0)),
        "burst_length_s": draw(st.floats(0.0, 1.0)) * period,
        "burst_period_s": period,
        "burst_start_s": draw(st.floats(0.0, 1000.0)),
        "herd_size": draw(st.integers(0, 20)),
        "herd_period_s": draw(st.floats(0.3, 500.0)),
        "arrival": draw(ARRIVALS),
        "delay_s": draw(DELAYS),
    }
    has_bursts = workload["burst_rate_per_s"] > 0 and workload["burst_length_s"] > 0
    if workload["base_rate_per_s"] == 0 and not has_bursts and workload["herd_size"] == 0:
        workload["herd_size"] = 1
    return workload


@settings(max_examples=60, deadline=None)
@given(
    workload=st.one_of(flat_workloads(), bursty_workloads()),
    duration_s=DURATIONS,
    seed=st.integers(0, 2**32),
)
def test_generated_arrivals_invariants(workload, duration_s, seed):
    scenario = make_scenario(workload, duration_s)

    arrivals = generate(scenario, seed)

    assert_invariants(arrivals, duration_s)


@settings(max_examples=60, deadline=None)
@given(workload=bursty_workloads(), duration_s=DURATIONS)
def test_even_count_matches_estimate(workload, duration_s):
    scenario = make_scenario({**workload, "arrival": "even"}, duration_s)

    assert len(generate(scenario)) == estimate_message_count(scenario)


@settings(max_examples=60, deadline=None)
@given(
    due=st.lists(st.floats(0.0, 2_592_000.0, exclude_max=True), min_size=1, max_size=50),
    delay=st.integers(0, limits.MAX_DELAY_S),
)
def test_schedule_identity_exact(due, delay):
    due_sorted = np.sort(np.array(due))

    arrivals = _schedule(due_sorted, np.full(len(due), delay, dtype=np.int32))

    assert np.array_equal(arrivals.due_at_s, due_sorted)
    assert np.all(arrivals.send_at_s >= 0)


# ---------------------------------------------------------------------------------------------
# Performance


def test_flat_360k_messages_fast():
    workload = {"kind": "flat", "rate_per_s": 100, "delay_s": {"low": 0, "high": 900}}
    scenario = make_scenario(workload, 3600.0)

    # Best of three, so that one slow run on a busy machine does not fail the test.
    elapsed = []
    for seed in range(3):
        start = time.perf_counter()
        arrivals = generate(scenario, seed)
        elapsed.append(time.perf_counter() - start)

    assert len(arrivals) > 350_000
    assert min(elapsed) < 0.2


# ---------------------------------------------------------------------------------------------
# Trace files: reading


def test_trace_csv_due_only(tmp_path):
    write_csv(tmp_path, "due_at_s\n0.5\n3\n10.25\n")
    scenario = trace_scenario(tmp_path, "trace.csv", delay_s=5)

    arrivals = generate(scenario)

    assert arrivals.due_at_s.tolist() == [0.5, 3.0, 10.25]
    assert arrivals.delay_s.tolist() == [0, 3, 5]
    assert arrivals.send_at_s.tolist() == [0.5, 0.0, 5.25]


def test_trace_csv_delay_column(tmp_path):
    write_csv(tmp_path, "due_at_s,delay_s,payload\n10,10,a\n20,0,b\n920,900,c\n")
    scenario = trace_scenario(tmp_path, "trace.csv", delay_s=7)

    arrivals = generate(scenario)

    assert arrivals.delay_s.tolist() == [10, 0, 900]
    assert arrivals.send_at_s.tolist() == [0.0, 20.0, 20.0]
    assert arrivals.due_at_s.tolist() == [10.0, 20.0, 920.0]


def test_trace_csv_spaces_after_commas(tmp_path):
    write_csv(tmp_path, "due_at_s, delay_s\n10, 2\n")
    scenario = trace_scenario(tmp_path, "trace.csv")

    arrivals = generate(scenario)

    assert arrivals.delay_s.tolist() == [2]


def test_trace_custom_column_names(tmp_path):
    write_csv(tmp_path, "t,d\n4,1\n5,2\n")
    scenario = trace_scenario(tmp_path, "trace.csv", due_column="t", delay_column="d")

    arrivals = generate(scenario)

    assert arrivals.due_at_s.tolist() == [4.0, 5.0]
    assert arrivals.delay_s.tolist() == [1, 2]


def test_trace_first_row_origin(tmp_path):
    write_csv(tmp_path, "due_at_s\n1700000000\n1700000001.5\n1700000060\n")
    scenario = trace_scenario(tmp_path, "trace.csv", time_origin="first_row")

    arrivals = generate(scenario)

    assert arrivals.due_at_s.tolist() == [0.0, 1.5, 60.0]


def test_trace_drops_rows_after_duration(tmp_path, caplog):
    write_csv(tmp_path, "due_at_s\n1\n5\n9.99\n10\n11\n")
    scenario = trace_scenario(tmp_path, "trace.csv", duration_s=10.0)

    with caplog.at_level(logging.INFO, logger="sim.workload"):
        arrivals = generate(scenario)

    assert arrivals.due_at_s.tolist() == [1.0, 5.0, 9.99]
    assert "dropped 2 of 5 rows" in caplog.text


def test_trace_no_log_when_nothing_dropped(tmp_path, caplog):
    write_csv(tmp_path, "due_at_s\n1\n")
    scenario = trace_scenario(tmp_path, "trace.csv", duration_s=10.0)

    with caplog.at_level(logging.INFO, logger="sim.workload"):
        generate(scenario)

    assert "dropped" not in caplog.text


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_trace_parquet_read(tmp_path, suffix):
    frame = pd.DataFrame({"due_at_s": [1.0, 2.0, 30.0], "delay_s": [1, 0, 30]})
    frame.to_parquet(tmp_path / f"trace{suffix}")
    scenario = trace_scenario(tmp_path, f"trace{suffix}")

    arrivals = generate(scenario)

    assert arrivals.due_at_s.tolist() == [1.0, 2.0, 30.0]
    assert arrivals.delay_s.tolist() == [1, 0, 30]
    assert arrivals.send_at_s.tolist() == [0.0, 2.0, 0.0]


def test_trace_relative_to_scenario_folder(tmp_path):
    (tmp_path / "traces").mkdir()
    write_csv(tmp_path, "due_at_s\n7\n", name="traces/trace.csv")
    scenario = trace_scenario(tmp_path, "traces/trace.csv")

    arrivals = generate(scenario)

    assert arrivals.due_at_s.tolist() == [7.0]


def test_trace_absolute_path(tmp_path):
    path = write_csv(tmp_path, "due_at_s\n8\n")
    scenario = make_scenario({"kind": "trace", "path": str(path)}).with_source(
        Path("/nonexistent/s.toml")
    )

    arrivals = generate(scenario)

    assert arrivals.due_at_s.tolist() == [8.0]


def test_trace_all_rows_after_duration(tmp_path):
    write_csv(tmp_path, "due_at_s\n50\n60\n")
    scenario = trace_scenario(tmp_path, "trace.csv", duration_s=10.0)

    arrivals = generate(scenario)

    assert len(arrivals) == 0


# ---------------------------------------------------------------------------------------------
# Trace files: errors


def test_trace_missing_file(tmp_path):
    scenario = trace_scenario(tmp_path, "absent.csv")

    with pytest.raises(ScenarioError) as caught:
        generate(scenario)

    message = str(caught.value)
    assert str(tmp_path / "absent.csv") in message
    assert "workload.path = 'absent.csv'" in message
    assert "not found" in message
    assert str(tmp_path) in message


def test_trace_error_is_user_input_error(tmp_path):
    scenario = trace_scenario(tmp_path, "absent.csv")

    with pytest.raises(UserInputError):
        generate(scenario)


def test_trace_folder_rejected(tmp_path):
    (tmp_path / "traces.csv").mkdir()
    scenario = trace_scenario(tmp_path, "traces.csv")

    with pytest.raises(ScenarioError) as caught:
        generate(scenario)

    message = str(caught.value)
    assert str(tmp_path / "traces.csv") in message
    assert "is a folder" in message
    assert ".csv, .parquet or .pq" in message


def test_trace_unknown_extension(tmp_path):
    write_csv(tmp_path, "due_at_s\n1\n", name="trace.txt")
    scenario = trace_scenario(tmp_path, "trace.txt")

    with pytest.raises(ScenarioError) as caught:
        generate(scenario)

    message = str(caught.value)
    assert str(tmp_path / "trace.txt") in message
    assert "unknown file extension '.txt'" in message
    assert ".csv, .parquet or .pq" in message


def test_trace_csv_not_utf8(tmp_path):
    (tmp_path / "trace.csv").write_bytes(b"\xff\xfe\x00\x81garbage\n\x82\x83\n")
    scenario = trace_scenario(tmp_path, "trace.csv")

    with pytest.raises(ScenarioError) as caught:
        generate(scenario)

    message = str(caught.value)
    assert str(tmp_path / "trace.csv") in message
    assert "not UTF-8 text (invalid byte at offset 0)" in message
    assert caught.value.__suppress_context__


def test_trace_ragged_csv(tmp_path):
    message = trace_error(tmp_path, "due_at_s,delay_s\n1,0\n3,0,5,6\n")

    assert "cannot be read as CSV" in message
    assert "Expected 2 fields in line 3, saw 4." in message


def test_trace_garbled_parquet(tmp_path):
    (tmp_path / "trace.parquet").write_bytes(b"PAR1 this is not parquet")
    scenario = trace_scenario(tmp_path, "trace.parquet")

    with pytest.raises(ScenarioError) as caught:
        generate(scenario)

    message = str(caught.value)
    assert str(tmp_path / "trace.parquet") in message
    assert "cannot be read as Parquet" in message
    assert caught.value.__suppress_context__


def test_trace_empty_file(tmp_path):
    message = trace_error(tmp_path, "")

    assert str(tmp_path / "trace.csv") in message
    assert "is empty" in message


def test_trace_header_only(tmp_path):
    message = trace_error(tmp_path, "due_at_s,delay_s\n")

    assert str(tmp_path / "trace.csv") in message
    assert "no data rows" in message
    assert "'due_at_s'" in message


def test_trace_parquet_no_rows(tmp_path):
    frame = pd.DataFrame({"due_at_s": pd.Series([], dtype="float64")})
    frame.to_parquet(tmp_path / "trace.parquet")
    scenario = trace_scenario(tmp_path, "trace.parquet")

    with pytest.raises(ScenarioError, match="no data rows"):
        generate(scenario)


def test_trace_missing_due_column(tmp_path):
    message = trace_error(tmp_path, "time,delay_s\n1,2\n")

    assert str(tmp_path / "trace.csv") in message
    assert "no column 'due_at_s' (workload.due_column)" in message
    assert "Columns found: 'time', 'delay_s'" in message


def test_trace_parquet_missing_due_column(tmp_path):
    pd.DataFrame({"when": [1.0]}).to_parquet(tmp_path / "trace.parquet")
    scenario = trace_scenario(tmp_path, "trace.parquet")

    with pytest.raises(ScenarioError) as caught:
        generate(scenario)

    assert "Columns found: 'when'" in str(caught.value)


def test_trace_due_not_number(tmp_path):
    message = trace_error(tmp_path, "due_at_s\n1\n2\nsoon\n4\n")

    assert str(tmp_path / "trace.csv") in message
    assert "data row 3 of column 'due_at_s' (workload.due_column)" in message
    assert "'soon', which is not a number" in message
    assert "Accepted values: numbers of seconds" in message


def test_trace_due_empty_cell(tmp_path):
    message = trace_error(tmp_path, "due_at_s,delay_s\n1,0\n,0\n3,0\n")

    assert "data row 2 of column 'due_at_s'" in message
    assert "is empty or NaN" in message


def test_trace_due_nan(tmp_path):
    message = trace_error(tmp_path, "due_at_s\n1\nNaN\n")

    assert "data row 2 of column 'due_at_s'" in message
    assert "is empty or NaN" in message


def test_trace_due_infinite(tmp_path):
    message = trace_error(tmp_path, "due_at_s\n1\ninf\n")

    assert "data row 2 of column 'due_at_s'" in message
    assert "inf, which is not a finite number" in message


def test_trace_due_negative(tmp_path):
    message = trace_error(tmp_path, "due_at_s\n-2.5\n1\n")

    assert "data row 1 of column 'due_at_s'" in message
    assert "-2.5, which is negative" in message
    assert "0 or above" in message


def test_trace_due_boolean(tmp_path):
    message = trace_error(tmp_path, "due_at_s\nTrue\nFalse\n")

    assert "data row 1 of column 'due_at_s'" in message
    assert "True, which is not a number" in message


def test_trace_due_timestamp_parquet(tmp_path):
    frame = pd.DataFrame({"due_at_s": pd.to_datetime(["2024-01-01", "2024-01-02"])})
    frame.to_parquet(tmp_path / "trace.parquet")
    scenario = trace_scenario(tmp_path, "trace.parquet")

    with pytest.raises(ScenarioError) as caught:
        generate(scenario)

    message = str(caught.value)
    assert "data row 1 of column 'due_at_s'" in message
    assert "not a number" in message


def test_trace_due_first_problem_wins(tmp_path):
    message = trace_error(tmp_path, "due_at_s\n1\n-1\nsoon\n")

    assert "data row 2 of column 'due_at_s'" in message
    assert "negative" in message


def test_trace_due_unsorted(tmp_path):
    message = trace_error(tmp_path, "due_at_s\n1\n5\n4\n6\n")

    assert str(tmp_path / "trace.csv") in message
    assert "data row 3 of column 'due_at_s' (workload.due_column) is 4, below 5" in message
    assert "data row 2" in message
    assert "sort the file by 'due_at_s'" in message


def test_trace_first_row_unsorted(tmp_path):
    message = trace_error(
        tmp_path, "due_at_s\n1700000000\n1699999999\n", time_origin="first_row"
    )

    assert "data row 2 of column 'due_at_s'" in message
    assert "sort the file by 'due_at_s'" in message


def test_trace_first_row_allows_negative_origin(tmp_path):
    write_csv(tmp_path, "due_at_s\n-10\n-4\n")
    scenario = trace_scenario(tmp_path, "trace.csv", time_origin="first_row")

    arrivals = generate(scenario)

    assert arrivals.due_at_s.tolist() == [0.0, 6.0]


def test_trace_parquet_unsorted(tmp_path):
    pd.DataFrame({"due_at_s": [3.0, 1.0]}).to_parquet(tmp_path / "trace.parquet")
    scenario = trace_scenario(tmp_path, "trace.parquet")

    with pytest.raises(ScenarioError) as caught:
        generate(scenario)

    message = str(caught.value)
    assert str(tmp_path / "trace.parquet") in message
    assert "data row 2 of column 'due_at_s'" in message
    assert "1.0, below 3.0" in message


def test_trace_delay_not_whole(tmp_path):
    message = trace_error(tmp_path, "due_at_s,delay_s\n10,1\n20,2.5\n")

    assert str(tmp_path / "trace.csv") in message
    assert "data row 2 of column 'delay_s' (workload.delay_column)" in message
    assert "2.5, which is not a whole number" in message
    assert f"whole seconds from 0 to {limits.MAX_DELAY_S}" in message


def test_trace_delay_negative(tmp_path):
    message = trace_error(tmp_path, "due_at_s,delay_s\n10,-1\n")

    assert "data row 1 of column 'delay_s' (workload.delay_column)" in message
    assert "-1, which is negative" in message


def test_trace_delay_above_max(tmp_path):
    message = trace_error(tmp_path, "due_at_s,delay_s\n1000,900\n2000,901\n")

    assert "data row 2 of column 'delay_s' (workload.delay_column)" in message
    assert f"901, which is above the SQS maximum DelaySeconds of {limits.MAX_DELAY_S}" in message


def test_trace_delay_not_number(tmp_path):
    message = trace_error(tmp_path, "due_at_s,delay_s\n10,1\n20,later\n")

    assert "data row 2 of column 'delay_s'" in message
    assert "'later', which is not a number" in message


def test_trace_delay_empty_cell(tmp_path):
    message = trace_error(tmp_path, "due_at_s,delay_s\n10,1\n20,\n")

    assert "data row 2 of column 'delay_s'" in message
    assert "is empty or NaN" in message


def test_trace_delay_above_due(tmp_path):
    message = trace_error(tmp_path, "due_at_s,delay_s\n10,10\n12.5,13\n")

    assert str(tmp_path / "trace.csv") in message
    assert "data row 2 of column 'delay_s' (workload.delay_column) is 13" in message
    assert "larger than the row's due time of 12.5 s" in message
    assert "sent before the run starts" in message


def test_trace_delay_above_due_first_row(tmp_path):
    message = trace_error(
        tmp_path, "due_at_s,delay_s\n1000,0\n1005,6\n", time_origin="first_row"
    )

    assert "data row 2 of column 'delay_s'" in message
    assert "due time of 5 s after the run start" in message


def test_trace_delay_checked_in_dropped_rows(tmp_path):
    message = trace_error(tmp_path, "due_at_s,delay_s\n1,0\n50,2.5\n", duration_s=10.0)

    assert "data row 2 of column 'delay_s'" in message
