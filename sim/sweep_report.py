"""Printed report and plots of a finished sweep."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from sim.runner import run_scenario
from sim.scenario import Scenario, validate_document
from sim.sweep import SweepReport, replication_seeds
from sim.sweep_spec import apply_point

logger = logging.getLogger(__name__)

LATENESS = "lateness_s.p99"
COST = "cost_usd.per_million_messages"
# Frontier points rerun for their concurrency series; the plot shows six of them.
MAX_RERUNS = 24


def sweep_design(scenario: Scenario) -> str:
    """Return the design a sweep's plots and tuning use: sweep.design, or the first design."""
    if scenario.sweep is not None and scenario.sweep.design:
        return scenario.sweep.design
    return next(iter(scenario.designs))


def format_sweep_report(scenario: Scenario, report: SweepReport) -> str:
    design = sweep_design(scenario)
    lines = [
        f"sweep of {scenario.name}: {report.tasks} runs ({report.skipped_done} already done), "
        f"{report.invalid_points} invalid points skipped, {report.wall_s:.1f} s",
    ]
    points = report.points
    if not points.empty and f"{LATENESS}.mean" in points:
        mine = points[points["design"] == design]
        parameters = [column for column in mine.columns if column.startswith("param.")]
        cheapest = mine.sort_values(f"{COST}.mean").head(5)
        lines.append(f"cheapest points of design {design} (mean over {scenario.sweep.replications if scenario.sweep else 1} seeds):")
        header = [name.removeprefix("param.") for name in parameters] + ["p99 lateness (s)", "USD per 1M messages"]
        rows = [header]
        for _, row in cheapest.iterrows():
            rows.append([_cell(row[name]) for name in parameters] + [f"{row[f'{LATENESS}.mean']:.3f}", f"{row[f'{COST}.mean']:.3f}"])
        widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
        lines += ["  " + "  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in rows]
    lines.append(f"results: {report.folder}")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def frontier_concurrency(scenario: Scenario, points: pd.DataFrame, design: str, point_ids: list[int]) -> dict[int, pd.DataFrame]:
    """Rerun the given points with the first replication's seed; return their concurrency series."""
    seed = replication_seeds(scenario.seed, 1)[0]
    parameters = [column for column in points.columns if column.startswith("param.")]
    curves: dict[int, pd.DataFrame] = {}
    for point_id in point_ids:
        row = points[(points["point_id"] == point_id) & (points["design"] == design)].iloc[0]
        point = {name.removeprefix("param."): _plain(row[name]) for name in parameters}
        document = apply_point(scenario.document, point)
        document["seed"] = seed
        result = run_scenario(validate_document(document, scenario.source), [design])
        curves[point_id] = result.concurrency[["at_s", "concurrency"]].reset_index(drop=True)
    return curves


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def write_sweep_outputs(scenario: Scenario, report: SweepReport) -> list:
    """Draw the sweep plots into the sweep folder."""
    from sim.sweep_plots import pareto_front, write_sweep_plots

    design = sweep_design(scenario)
    points = report.points
    if points.empty:
        return []
    mine = points[points["design"] == design]
    front = pareto_front(mine, f"{COST}.mean", f"{LATENESS}.mean")
    # The plot draws at most six frontier points, chosen along the front with the knee. The
    # series are rerun for the whole front, up to a bound, so that whichever it picks is there.
    chosen = [int(point_id) for point_id in front["point_id"]][:MAX_RERUNS]
    curves = frontier_concurrency(scenario, points, design, chosen)
    return write_sweep_plots(report.folder, scenario.name, points, design, curves)
