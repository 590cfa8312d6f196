"""Sweeps: every point of a scenario's ``[sweep]`` section, each run with several seeds.

Each run (one point, one replication) is a task. A task's result is written to its own file as
soon as it is done, atomically, so an interrupted sweep keeps every finished task and a rerun
with the same output folder skips them. Tasks run in local processes or on a Dask distributed
cluster. A task's result depends only on its scenario document and seed, so both executors give
the same numbers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import pandas as pd
from scipy import stats

from sim.errors import ScenarioError, UserInputError
from sim.runner import run_scenario
from sim.scenario import Scenario, validate_document
from sim.sweep_spec import Scalar, apply_point, sweep_points

logger = logging.getLogger(__name__)

TASKS_FOLDER = "tasks"
SPEC_FILE = "sweep.json"
SWEEP_TABLE = "sweep.parquet"
POINTS_TABLE = "points.parquet"
CONFIDENCE = 0.95
# Summary fields that are settings or labels, not metrics.
_NOT_METRICS = ("kind", "settings")


@dataclass(frozen=True)
class SweepTask:
    """One run of a sweep: a point and a replication, with everything a worker needs."""

    point_id: int
    replication: int
    seed: int
    point: dict[str, Scalar]
    document: dict[str, Any]
    source: str | None

    @property
    def file_name(self) -> str:
        return f"point-{self.point_id:06d}-rep-{self.replication:04d}.parquet"


def replication_seeds(seed: int, replications: int) -> list[int]:
    """Return one seed per replication, the same for every point (common random numbers)."""
    children = np.random.SeedSequence(seed).spawn(replications)
    return [int(child.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for child in children]


def plan_sweep(scenario: Scenario) -> tuple[list[SweepTask], list[dict[str, Scalar]]]:
    """Return the tasks of a scenario's sweep and the points skipped as invalid combinations."""
    if scenario.sweep is None:
        raise ScenarioError(f"{scenario.source or scenario.name}: no [sweep] section; add one to name the parameters to vary")
    settings = scenario.sweep
    document = scenario.document
    seeds = replication_seeds(scenario.seed, settings.replications)
    tasks: list[SweepTask] = []
    skipped: list[dict[str, Scalar]] = []
    for point_id, point in enumerate(sweep_points(settings, scenario.seed)):
        point_document = apply_point(document, point)
        try:
            validate_document(point_document)
        except ValueError as error:
            logger.info("skipping point %s: %s", point, str(error).splitlines()[0])
            skipped.append(point)
            continue
        for replication, seed in enumerate(seeds):
            tasks.append(
                SweepTask(point_id, replication, seed, point, point_document, str(scenario.source) if scenario.source else None)
            )
    if skipped:
        logger.warning("%d of %d sweep points are invalid combinations and are skipped", len(skipped), len(skipped) + len({t.point_id for t in tasks}))
    return tasks, skipped


def fingerprint(scenario: Scenario) -> str:
    """Return a hash of everything that determines a sweep's results."""
    canonical = json.dumps(scenario.document, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Running one task


def flatten(summary: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten a design's summary into dotted metric names, numbers only."""
    flat: dict[str, Any] = {}
    for key, value in summary.items():
        if not prefix and key in _NOT_METRICS:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = value
        elif value is None:
            flat[name] = math.nan
    return flat


def run_sweep_task(task: SweepTask) -> pd.DataFrame:
    """Run one point and replication; return one row per design with every metric."""
    document = dict(task.document)
    document["seed"] = task.seed
    source = Path(task.source) if task.source else None
    scenario = validate_document(document, source)
    result = run_scenario(scenario)
    rows = []
    for design, summary in result.summary["designs"].items():
        row: dict[str, Any] = {"point_id": task.point_id, "replication": task.replication, "seed": task.seed, "design": design}
        row.update({f"param.{name}": value for name, value in task.point.items()})
        row.update(flatten(summary))
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Output folder


def prepare_output(folder: Path, scenario: Scenario) -> set[str]:
    """Create or reopen a sweep folder; return the file names of tasks already finished.

    Raises UserInputError when the folder contains a different sweep or is not a folder.
    """
    if folder.exists() and not folder.is_dir():
        raise UserInputError(f"{folder}: output path is a file; give a folder with --out")
    spec_path = folder / SPEC_FILE
    expected = {"scenario": scenario.name, "fingerprint": fingerprint(scenario)}
    if spec_path.exists():
        try:
            found = json.loads(spec_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise UserInputError(f"{spec_path}: cannot be read ({error}); use another --out folder") from None
        if found.get("fingerprint") != expected["fingerprint"]:
            raise UserInputError(
                f"{folder}: contains a sweep of a different scenario or sweep settings "
                f"({found.get('scenario')!r}); use another --out folder to start a new sweep"
            )
    elif folder.exists() and any(folder.iterdir()):
        raise UserInputError(f"{folder}: is not empty and has no {SPEC_FILE}; use an empty or new --out folder")
    (folder / TASKS_FOLDER).mkdir(parents=True, exist_ok=True)
    if not spec_path.exists():
        _write_atomically(spec_path, lambda path: path.write_text(json.dumps(expected, indent=2) + "\n", encoding="utf-8"))
    return {path.name for path in (folder / TASKS_FOLDER).glob("point-*.parquet")}


def _write_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def save_task(folder: Path, task: SweepTask, rows: pd.DataFrame) -> None:
    _write_atomically(folder / TASKS_FOLDER / task.file_name, lambda path: rows.to_parquet(path, index=False))


# ---------------------------------------------------------------------------------------------
# Executors


Progress = Callable[[int], None]


def run_local(tasks: list[SweepTask], workers: int, on_result: Callable[[SweepTask, pd.DataFrame], None]) -> None:
    """Run tasks in ``workers`` local processes (in this process when ``workers`` is 1)."""
    if workers <= 1:
        for task in tasks:
            on_result(task, run_sweep_task(task))
        return
    # "spawn" gives each worker a fresh interpreter: no inherited threads or locks from the CLI.
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        pending: dict[Future[pd.DataFrame], SweepTask] = {}
        queue: Iterator[SweepTask] = iter(tasks)
        try:
            _fill(pool, pending, queue, workers * 2)
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    task = pending.pop(future)
                    on_result(task, future.result())
                _fill(pool, pending, queue, workers * 2)
        except BaseException:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _fill(pool: ProcessPoolExecutor, pending: dict[Future[pd.DataFrame], SweepTask], queue: Iterator[SweepTask], size: int) -> None:
    while len(pending) < size:
        task = next(queue, None)
        if task is None:
            return
        pending[pool.submit(run_sweep_task, task)] = task


def run_dask(tasks: list[SweepTask], address: str, on_result: Callable[[SweepTask, pd.DataFrame], None]) -> None:
    """Run tasks on the Dask distributed scheduler at ``address`` (such as tcp://127.0.0.1:8786)."""
    from distributed import Client, as_completed

    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError) as error:
        raise UserInputError(f"cannot connect to the Dask scheduler at {address}: {error}") from None
    try:
        futures = client.map(run_sweep_task, tasks, pure=False)
        by_key = {future.key: task for future, task in zip(futures, tasks)}
        try:
            for future in as_completed(futures):
                on_result(by_key[future.key], future.result())
        except BaseException:
            client.cancel(futures)
            raise
    finally:
        client.close()


# ---------------------------------------------------------------------------------------------
# Tables


def collect(folder: Path) -> pd.DataFrame:
    """Read every finished task of a sweep folder into one table, in point and replication order."""
    frames = [pd.read_parquet(path) for path in sorted((folder / TASKS_FOLDER).glob("point-*.parquet"))]
    if not frames:
        return pd.DataFrame()
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values(["point_id", "replication", "design"], kind="stable").reset_index(drop=True)


def metric_columns(table: pd.DataFrame) -> list[str]:
    fixed = {"point_id", "replication", "seed", "design"}
    return [column for column in table.columns if column not in fixed and not column.startswith("param.")]


def summarize_points(table: pd.DataFrame) -> pd.DataFrame:
    """Return per point and design the mean and the 95% confidence interval of every metric.

    The interval is the mean plus or minus Student's t quantile times the standard error; it is
    NaN with one replication.
    """
    if table.empty:
        return pd.DataFrame()
    parameters = [column for column in table.columns if column.startswith("param.")]
    metrics = metric_columns(table)
    rows = []
    for (point_id, design), group in table.groupby(["point_id", "design"], sort=True):
        row: dict[str, Any] = {"point_id": point_id, "design": design, "replications": len(group)}
        row.update({parameter: group[parameter].iloc[0] for parameter in parameters})
        for metric in metrics:
            mean, low, high = confidence_interval(group[metric].to_numpy(dtype=np.float64))
            row[f"{metric}.mean"] = mean
            row[f"{metric}.ci_low"] = low
            row[f"{metric}.ci_high"] = high
        rows.append(row)
    return pd.DataFrame(rows)


def confidence_interval(values: np.ndarray) -> tuple[float, float, float]:
    """Return the mean and the two ends of its 95% confidence interval (Student's t)."""
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return math.nan, math.nan, math.nan
    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan, math.nan
    half_width = float(stats.t.ppf(0.5 + CONFIDENCE / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))
    return mean, mean - half_width, mean + half_width


def write_tables(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write sweep.parquet and points.parquet from the finished tasks, atomically."""
    table = collect(folder)
    points = summarize_points(table)
    _write_atomically(folder / SWEEP_TABLE, lambda path: table.to_parquet(path, index=False))
    _write_atomically(folder / POINTS_TABLE, lambda path: points.to_parquet(path, index=False))
    return table, points


@dataclass
class SweepReport:
    folder: Path
    tasks: int
    skipped_done: int
    invalid_points: int
    wall_s: float
    table: pd.DataFrame
    points: pd.DataFrame


def run_sweep(
    scenario: Scenario,
    folder: Path,
    workers: int = 1,
    dask_address: str | None = None,
    progress: Callable[[int, int], Callable[[], None]] | None = None,
) -> SweepReport:
    """Run every unfinished task of the scenario's sweep and write the tables into ``folder``.

    ``progress`` gets (total tasks, tasks already done) and returns a function called after each
    finished task.
    """
    tasks, invalid = plan_sweep(scenario)
    if not tasks:
        raise ScenarioError(f"{scenario.source or scenario.name}: every sweep point is an invalid combination of settings")
    done = prepare_output(folder, scenario)
    remaining = [task for task in tasks if task.file_name not in done]
    logger.info("sweep of %s: %d tasks, %d already done", scenario.name, len(tasks), len(tasks) - len(remaining))
    step = progress(len(tasks), len(tasks) - len(remaining)) if progress else None

    def on_result(task: SweepTask, rows: pd.DataFrame) -> None:
        save_task(folder, task, rows)
        if step is not None:
            step()

    started = time.perf_counter()
    if dask_address:
        run_dask(remaining, dask_address, on_result)
    else:
        run_local(remaining, workers, on_result)
    wall_s = time.perf_counter() - started
    table, points = write_tables(folder)
    return SweepReport(folder, len(tasks), len(tasks) - len(remaining), len(invalid), wall_s, table, points)


def iter_parameters(points: pd.DataFrame) -> Iterable[str]:
    return [column for column in points.columns if column.startswith("param.")]
