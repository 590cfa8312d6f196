"""Run the designs of a scenario on common arrivals and collect their summaries and tables."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import pandas as pd

from sim import __version__
from sim.errors import ScenarioError
from sim.metrics import concurrency_frame, invocation_frame, message_frame, summarize_design
from sim.pricing import PRICE_REGION, PRICES_AS_OF
from sim.randomness import component_rng
from sim.scenario import Scenario
from sim.simulation import ProgressCallback, run_end_at_s, simulate_design
from sim.workload import Arrivals, estimate_message_count, generate_arrivals

logger = logging.getLogger(__name__)

# Called with the design name before it starts; returns the design's progress callback or None.
ProgressFactory = Callable[[str], ProgressCallback | None]


@dataclass
class RunResult:
    """Everything a run produced, ready to be written or inspected."""

    scenario: Scenario
    summary: dict[str, Any]
    messages: pd.DataFrame
    invocations: pd.DataFrame
    concurrency: pd.DataFrame
    wall_time_s: dict[str, float] = field(default_factory=dict)


def select_designs(scenario: Scenario, design_names: Sequence[str] | None) -> list[str]:
    """Return the requested design names, all by default; reject names the scenario lacks."""
    if not design_names:
        return list(scenario.designs)
    for name in design_names:
        if name not in scenario.designs:
            source = scenario.source or scenario.name
            raise ScenarioError(
                f"{source}: unknown design {name!r}; this scenario defines: {', '.join(scenario.designs)}"
            )
    return list(design_names)


# Memory one message costs while a design runs and its tables are built. benchmarks/
# bench_throughput.py measured about 390 bytes: 257 MiB peak for 358,823 messages and one
# design, less 118 MiB for the interpreter and libraries.
_BYTES_PER_MESSAGE_PER_DESIGN = 400
# A run is rejected when it would need more than this share of the machine's physical memory.
_MEMORY_SHARE = 0.8


def physical_memory_bytes() -> int | None:
    """Return the machine's physical memory, or None where the OS does not tell."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(scenario: Scenario, design_count: int) -> None:
    """Reject a scenario whose run would exhaust memory, with an estimate of what it needs."""
    messages = estimate_message_count(scenario)
    needed = messages * _BYTES_PER_MESSAGE_PER_DESIGN * (design_count + 1)
    available = physical_memory_bytes()
    if available is None or needed <= available * _MEMORY_SHARE:
        return
    source = scenario.source or scenario.name
    raise ScenarioError(
        f"{source}: the workload would create about {messages:,.0f} messages, needing about "
        f"{needed / 2**30:,.1f} GiB of memory, but this machine has {available / 2**30:,.1f} GiB; "
        f"lower duration_s or the workload rates"
    )


def prepare_arrivals(scenario: Scenario, design_names: Sequence[str] | None = None) -> Arrivals:
    """Check the designs and the memory a run needs, then generate its arrivals.

    Every input problem a run can meet (an unknown design, a bad trace, a run too large for
    memory) is raised here, before any simulation.
    """
    names = select_designs(scenario, design_names)
    check_memory(scenario, len(names))
    return generate_arrivals(scenario, component_rng(scenario.seed, "workload"))


def run_scenario(
    scenario: Scenario,
    design_names: Sequence[str] | None = None,
    progress: ProgressFactory | None = None,
    arrivals: Arrivals | None = None,
) -> RunResult:
    """Simulate each selected design on the same arrivals (common random numbers).

    ``arrivals`` are the ones ``prepare_arrivals`` returned for this scenario, or None to make
    them here.
    """
    names = select_designs(scenario, design_names)
    if arrivals is None:
        arrivals = prepare_arrivals(scenario, names)
    logger.info("scenario %s: %d messages due within %.0f s", scenario.name, len(arrivals), scenario.duration_s)

    summaries: dict[str, Any] = {}
    messages, invocations, concurrency = [], [], []
    wall_time_s: dict[str, float] = {}
    for name in names:
        started = time.perf_counter()
        run = simulate_design(scenario, name, arrivals, progress(name) if progress else None)
        summaries[name] = summarize_design(run, arrivals, scenario.lambda_.architecture)
        messages.append(message_frame(run, arrivals))
        invocations.append(invocation_frame(run))
        concurrency.append(concurrency_frame(run))
        wall_time_s[name] = time.perf_counter() - started
        logger.info("design %s simulated in %.2f s of wall-clock time", name, wall_time_s[name])

    summary = {
        "scenario": scenario.name,
        "description": scenario.description,
        "seed": scenario.seed,
        "version": __version__,
        "engine": "sim",
        "duration_s": scenario.duration_s,
        "drain_s": scenario.drain_s,
        "end_at_s": run_end_at_s(scenario),
        "messages": len(arrivals),
        "prices": {"as_of": PRICES_AS_OF, "region": PRICE_REGION},
        "warnings": scenario.warnings(),
        "designs": summaries,
    }
    return RunResult(
        scenario=scenario,
        summary=summary,
        messages=pd.concat(messages, ignore_index=True),
        invocations=pd.concat(invocations, ignore_index=True),
        concurrency=pd.concat(concurrency, ignore_index=True),
        wall_time_s=wall_time_s,
    )
