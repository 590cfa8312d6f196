"""Benchmark: sweep throughput with 1 and 2 local workers, and the Dask executor's overhead.

Runs the sweep of scenarios/tune-timer.toml (27 points, 3 replications: 81 runs) three times into
temporary folders: with one local worker, with two, and on a Dask LocalCluster of one worker
process on 127.0.0.1. Prints points per minute, the speedup of two workers over one, and the
Dask overhead per point compared with one local worker. Run with
``python benchmarks/bench_sweep.py``.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path

from sim.scenario import load_scenario
from sim.sweep import plan_sweep, run_sweep

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "tune-timer.toml"


def timed_sweep(**executor: object) -> float:
    scenario = load_scenario(SCENARIO)
    with tempfile.TemporaryDirectory(prefix="drainsim-bench-") as folder:
        started = time.perf_counter()
        run_sweep(scenario, Path(folder) / "sweep", **executor)  # type: ignore[arg-type]
        return time.perf_counter() - started


def main() -> None:
    from distributed import LocalCluster

    scenario = load_scenario(SCENARIO)
    tasks, _ = plan_sweep(scenario)
    points = len({task.point_id for task in tasks})
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; python {platform.python_version()}")
    print(f"sweep: {SCENARIO.name}, {points} points x {scenario.sweep.replications} replications = {len(tasks)} runs")

    one_s = timed_sweep(workers=1)
    two_s = timed_sweep(workers=2)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None) as cluster:
        dask_s = timed_sweep(dask_address=cluster.scheduler_address)

    print(f"{'executor':<24} {'wall s':>8} {'points/min':>11}")
    for label, seconds in (("local, 1 worker", one_s), ("local, 2 workers", two_s), ("Dask, 1 worker process", dask_s)):
        print(f"{label:<24} {seconds:>8.1f} {points / seconds * 60:>11.1f}")
    print(f"speedup of 2 workers over 1: {one_s / two_s:.2f}x")
    print(f"Dask overhead per point versus 1 local worker: {(dask_s - one_s) / points * 1000:+.0f} ms")


if __name__ == "__main__":
    main()
