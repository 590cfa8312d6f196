"""Sweeps: the [sweep] section, planning, replications, resuming and the two executors."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sim.errors import ScenarioError, UserInputError
from sim.scenario import Scenario, load_scenario
from sim.sweep import (
    POINTS_TABLE,
    SWEEP_TABLE,
    TASKS_FOLDER,
    confidence_interval,
    plan_sweep,
    replication_seeds,
    run_sweep,
)
from sim.sweep_spec import LogAxis, RangeAxis, SweepSettings, ValuesAxis, apply_point, sweep_points

SCENARIO = """
name = "small-sweep"
seed = 3
duration_s = 120
drain_s = 60

[workload]
kind = "bursty"
base_rate_per_s = 1
herd_size = 30
herd_period_s = 30
delay_s = { low = 0, high = 30 }

[designs.timer]
kind = "timer"
period_s = 20
baseline_s = 10
timeout_s = 60
wait_s = 2

[sweep]
replications = 2

[sweep.parameters]
"designs.timer.period_s" = { values = [10, 30] }
"designs.timer.timeout_s" = { values = [20, 60] }
"designs.timer.baseline_s" = { values = [10, 25] }
"""


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "small-sweep.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# The [sweep] section


def test_range_axis_includes_stop():
    assert RangeAxis(start=10, stop=30, step=10).expand() == [10, 20, 30]
    assert RangeAxis(start=0.5, stop=1.6, step=0.5).expand() == [0.5, 1.0, 1.5]


def test_log_axis_spans_ends():
    values = LogAxis(log_start=1, log_stop=100, count=3).expand()

    assert values == pytest.approx([1, 10, 100])


def test_log_axis_integer_values_distinct():
    assert LogAxis(log_start=1, log_stop=4, count=6, integer=True).expand() == [1, 2, 3, 4]


def test_grid_is_full_product():
    settings = SweepSettings(parameters={"a": ValuesAxis(values=[1, 2, 3]), "b": ValuesAxis(values=["x", "y"])})

    points = sweep_points(settings, seed=1)

    assert len(points) == 6
    assert points[0] == {"a": 1, "b": "x"}
    assert points[-1] == {"a": 3, "b": "y"}


@pytest.mark.parametrize("sample", ["random", "sobol"])
def test_samples_are_distinct_and_seeded(sample):
    settings = SweepSettings(
        parameters={"a": RangeAxis(start=0, stop=9, step=1), "b": RangeAxis(start=0, stop=9, step=1)},
        sample=sample,
        points=20,
    )

    first = sweep_points(settings, seed=5)
    again = sweep_points(settings, seed=5)
    other = sweep_points(settings, seed=6)

    assert len(first) == 20
    assert len({tuple(point.values()) for point in first}) == 20
    assert first == again
    assert first != other


def test_sample_needs_points():
    with pytest.raises(ValueError, match="needs points"):
        SweepSettings(parameters={"a": ValuesAxis(values=[1])}, sample="random")


def test_apply_point_sets_dotted_paths():
    document = {"designs": {"timer": {"kind": "timer", "period_s": 60}}, "queue": {}}

    changed = apply_point(document, {"designs.timer.period_s": 30, "queue.visibility_timeout_s": 5})

    assert changed["designs"]["timer"]["period_s"] == 30
    assert changed["queue"]["visibility_timeout_s"] == 5
    assert document["designs"]["timer"]["period_s"] == 60


def test_unknown_parameter_path_rejected(scenario_file):
    scenario_file.write_text(SCENARIO.replace('"designs.timer.period_s"', '"designs.timr.period_s"'), encoding="utf-8")

    with pytest.raises(ScenarioError, match="designs.timr.period_s"):
        load_scenario(scenario_file)


def test_invalid_swept_value_rejected(scenario_file):
    scenario_file.write_text(SCENARIO.replace("values = [10, 30]", "values = [10, 0.5]"), encoding="utf-8")

    with pytest.raises(ScenarioError, match=r"'designs.timer.period_s' = 0.5 is invalid"):
        load_scenario(scenario_file)


# ---------------------------------------------------------------------------------------------
# Planning


def test_plan_skips_invalid_combinations(scenario_file):
    tasks, skipped = plan_sweep(load_scenario(scenario_file))

    # timeout 20 is not above baseline 25: the two points with both are skipped.
    assert len(skipped) == 2
    assert all(point["designs.timer.timeout_s"] == 20 and point["designs.timer.baseline_s"] == 25 for point in skipped)
    assert len(tasks) == (8 - 2) * 2


def test_replications_share_seeds_across_points(scenario_file):
    tasks, _ = plan_sweep(load_scenario(scenario_file))

    seeds_by_point: dict[int, list[int]] = {}
    for task in tasks:
        seeds_by_point.setdefault(task.point_id, []).append(task.seed)

    assert len({tuple(seeds) for seeds in seeds_by_point.values()}) == 1
    assert seeds_by_point[0] == replication_seeds(3, 2)
    assert len(set(seeds_by_point[0])) == 2


def test_confidence_interval_matches_t_distribution():
    mean, low, high = confidence_interval(np.array([1.0, 2.0, 3.0]))

    # t(0.975, 2) = 4.302653; standard error = 1 / sqrt(3).
    assert mean == 2.0
    assert high - mean == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert mean - low == pytest.approx(high - mean)


def test_confidence_interval_undefined_for_one_value():
    mean, low, high = confidence_interval(np.array([4.0]))

    assert mean == 4.0
    assert math.isnan(low)
    assert math.isnan(high)


# ---------------------------------------------------------------------------------------------
# Running


def test_sweep_writes_tables(scenario_file, tmp_path):
    report = run_sweep(load_scenario(scenario_file), tmp_path / "out", workers=1)

    table = pd.read_parquet(tmp_path / "out" / SWEEP_TABLE)
    points = pd.read_parquet(tmp_path / "out" / POINTS_TABLE)
    assert report.tasks == 12
    assert len(table) == 12
    assert len(points) == 6
    assert (points["replications"] == 2).all()
    assert {"lateness_s.p99.mean", "lateness_s.p99.ci_low", "lateness_s.p99.ci_high", "cost_usd.per_million_messages.mean"} <= set(points.columns)
    assert "param.designs.timer.period_s" in points.columns
    assert (points["lateness_s.p99.ci_low"] <= points["lateness_s.p99.mean"]).all()


def test_interrupted_sweep_resumes(scenario_file, tmp_path):
    scenario = load_scenario(scenario_file)
    folder = tmp_path / "out"
    finished = []

    def stop_after_three(total: int, done: int):
        def step() -> None:
            finished.append(1)
            if len(finished) == 3:
                raise KeyboardInterrupt

        return step

    with pytest.raises(KeyboardInterrupt):
        run_sweep(scenario, folder, workers=1, progress=stop_after_three)
    kept = sorted(path.name for path in (folder / TASKS_FOLDER).iterdir())
    report = run_sweep(scenario, folder, workers=1)

    assert len(kept) == 3
    assert not any(name.startswith(".") for name in kept)
    assert report.skipped_done == 3
    assert report.tasks == 12
    assert len(pd.read_parquet(folder / SWEEP_TABLE)) == 12


def test_changed_scenario_refuses_old_folder(scenario_file, tmp_path):
    folder = tmp_path / "out"
    run_sweep(load_scenario(scenario_file), folder, workers=1)
    scenario_file.write_text(SCENARIO.replace("replications = 2", "replications = 3"), encoding="utf-8")

    with pytest.raises(UserInputError, match="different scenario or sweep settings"):
        run_sweep(load_scenario(scenario_file), folder, workers=1)


def test_local_processes_match_in_process(scenario_file, tmp_path):
    scenario = load_scenario(scenario_file)

    run_sweep(scenario, tmp_path / "one", workers=1)
    run_sweep(scenario, tmp_path / "two", workers=2)

    one = pd.read_parquet(tmp_path / "one" / POINTS_TABLE)
    two = pd.read_parquet(tmp_path / "two" / POINTS_TABLE)
    pd.testing.assert_frame_equal(one, two)


def test_dask_cluster_matches_local(scenario_file, tmp_path):
    from distributed import LocalCluster

    scenario = load_scenario(scenario_file)
    run_sweep(scenario, tmp_path / "local", workers=2)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None) as cluster:
        run_sweep(scenario, tmp_path / "dask", dask_address=cluster.scheduler_address)

    local = pd.read_parquet(tmp_path / "local" / POINTS_TABLE)
    dask = pd.read_parquet(tmp_path / "dask" / POINTS_TABLE)
    pd.testing.assert_frame_equal(local, dask)
    assert json.loads((tmp_path / "dask" / "sweep.json").read_text())["scenario"] == "small-sweep"


def test_sweep_without_section_rejected(tmp_path):
    scenario = Scenario.model_validate(
        {
            "name": "plain",
            "seed": 1,
            "duration_s": 10,
            "workload": {"kind": "flat", "rate_per_s": 1},
            "designs": {"timer": {"kind": "timer"}},
        }
    )

    with pytest.raises(ScenarioError, match=r"no \[sweep\] section"):
        plan_sweep(scenario)


def test_cli_sweep_interrupt_keeps_finished_runs(scenario_file, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    scenario_file.write_text(SCENARIO.replace("duration_s = 120", "duration_s = 1500"), encoding="utf-8")
    folder = tmp_path / "out"
    command = [sys.executable, "-m", "sim", "sweep", str(scenario_file), "--out", str(folder), "--workers", "1", "--no-plots"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        tasks = folder / TASKS_FOLDER
        if tasks.is_dir() and len(list(tasks.glob("point-*.parquet"))) >= 2:
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    kept = sorted((folder / TASKS_FOLDER).iterdir())

    assert process.returncode == 130
    assert "every finished run was kept" in stderr
    assert "Traceback" not in stderr
    assert 2 <= len(kept) < 12
    assert not any(path.name.startswith(".") for path in kept)
    assert not (folder / SWEEP_TABLE).exists()

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)

    assert rerun.returncode == 0, rerun.stderr
    assert f"({len(kept)} already done)" in rerun.stdout
    assert len(pd.read_parquet(folder / SWEEP_TABLE)) == 12
