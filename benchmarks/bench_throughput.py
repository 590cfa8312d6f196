"""Benchmark: simulated messages per wall-clock second and peak memory, per design.

The workload is bursty and averages 100 messages per second over one simulated hour: a base
rate of 40/s, a 60 s burst at 400/s every 10 minutes (40/s on average) and 1,200 messages due on
every round minute (20/s). Each design runs in its own process so that its peak resident memory
is measured alone. Run with ``make bench`` or ``python benchmarks/bench_throughput.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

SCENARIO = {
    "name": "bench-bursty",
    "seed": 1,
    "duration_s": 3600,
    "drain_s": 300,
    "workload": {
        "kind": "bursty",
        "base_rate_per_s": 40,
        "burst_rate_per_s": 400,
        "burst_length_s": 60,
        "burst_period_s": 600,
        "herd_size": 1200,
        "herd_period_s": 60,
        "delay_s": {"low": 0, "high": 840},
    },
    "designs": {
        "recursive": {"kind": "recursive", "timeout_s": 300, "wait_s": 20, "allow_recursion": True},
        "timer": {"kind": "timer", "period_s": 60, "baseline_s": 60, "timeout_s": 300},
    },
}


def measure(design: str) -> dict[str, float]:
    """Simulate one design in this process and return its figures."""
    from sim.runner import run_scenario
    from sim.scenario import Scenario

    scenario = Scenario.model_validate(SCENARIO)
    started = time.perf_counter()
    result = run_scenario(scenario, [design])
    elapsed_s = time.perf_counter() - started
    summary = result.summary["designs"][design]
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "messages": summary["messages"],
        "wall_s": elapsed_s,
        "messages_per_s": summary["messages"] / elapsed_s,
        "peak_rss_mib": peak_kib / 1024,
        "api_calls": summary["sqs_requests"]["drain_total"] + summary["sns_requests"]["total"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--design", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.design:
        print(json.dumps(measure(args.design)))
        return

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or 'unknown CPU'}")
    print(f"python {platform.python_version()}, {platform.platform()}")
    print(f"{'design':<10} {'messages':>9} {'wall s':>7} {'msg/s':>9} {'API calls':>10} {'peak MiB':>9}")
    for design in SCENARIO["designs"]:
        output = subprocess.run(
            [sys.executable, __file__, "--design", design], capture_output=True, text=True, check=True
        )
        figures = json.loads(output.stdout.strip().splitlines()[-1])
        print(
            f"{design:<10} {figures['messages']:>9,} {figures['wall_s']:>7.2f} "
            f"{figures['messages_per_s']:>9,.0f} {figures['api_calls']:>10,} {figures['peak_rss_mib']:>9.0f}"
        )


if __name__ == "__main__":
    main()
