"""Tuning: an Optuna search of a scenario's ``[sweep]`` parameters for the cheapest settings.

``drainsim tune`` minimizes one metric of one design (such as ``cost_usd.per_million_messages``)
subject to bounds on others (such as ``lateness_s.p99<=2``). Each trial runs every replication
of one point with the sweep's seeds, the same for every trial (common random numbers), and
compares the means. The study lives in a SQLite file, so running the command again on the same
folder continues it.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import math
import re
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState
from pydantic import ValidationError

from sim.errors import ScenarioError, UserInputError
from sim.lambda_service import DropReason
from sim.scenario import Scenario, validate_document
from sim.scenario_errors import format_validation_error
from sim.sweep import SweepTask, confidence_interval, fingerprint, replication_seeds, run_sweep_task
from sim.sweep_spec import LogAxis, RangeAxis, Scalar, SweepSettings, ValuesAxis, apply_point

logger = logging.getLogger(__name__)

STUDY_FILE = "study.db"
# Study user attribute recording what a study optimizes, checked when a rerun continues it.
_SETTINGS_ATTR = "drainsim"
# Trial user attribute with the replication values of the objective and constraint metrics.
_VALUES_ATTR = "values"
# Trial user attribute with the validation error of a pruned point.
_INVALID_ATTR = "invalid"
# SweepTask.point_id of the baseline run, which is not an Optuna trial.
_BASELINE_POINT_ID = -1

_OPERATORS = ("<=", ">=", "<", ">")
_CONSTRAINT_PATTERN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(<=|>=|<|>)\s*(\S+)\s*")
_CONSTRAINT_FORMS = "METRIC<=VALUE, METRIC>=VALUE, METRIC<VALUE or METRIC>VALUE, such as lateness_s.p99<=2"


# ---------------------------------------------------------------------------------------------
# Constraints


@dataclass(frozen=True)
class Constraint:
    """A bound on the mean of one metric over the replications of a point."""

    metric: str
    operator: str
    bound: float

    def __post_init__(self) -> None:
        if self.operator not in _OPERATORS:
            raise ValueError(f"invalid operator {self.operator!r}: use one of {', '.join(_OPERATORS)}")

    def __str__(self) -> str:
        return f"{self.metric}{self.operator}{self.bound:.15g}"

    def violation(self, value: float) -> float:
        """Return how far ``value`` is outside the bound: 0 or less when the constraint holds.

        This is Optuna's convention for constraint values. A NaN value (a metric with no data,
        such as lateness when nothing was delivered) counts as violated by 1.0.
        """
        if math.isnan(value):
            return 1.0
        excess = value - self.bound if self.operator in ("<=", "<") else self.bound - value
        if excess == 0 and self.operator in ("<", ">"):
            # A strict bound fails at equality, so report the smallest positive violation.
            return math.ulp(0.0)
        return excess

    def holds(self, value: float) -> bool:
        return self.violation(value) <= 0


def parse_constraint(text: str) -> Constraint:
    """Parse ``metric<=value`` (or ``>=``, ``<``, ``>``) into a Constraint.

    Raises UserInputError naming the accepted forms when the text is not one of them.
    """
    match = _CONSTRAINT_PATTERN.fullmatch(text)
    if match is None:
        raise UserInputError(f"invalid constraint {text!r}: give {_CONSTRAINT_FORMS}")
    metric, operator, bound_text = match.groups()
    try:
        bound = float(bound_text)
    except ValueError:
        raise UserInputError(
            f"invalid constraint {text!r}: the bound {bound_text!r} is not a number; give {_CONSTRAINT_FORMS}"
        ) from None
    if not math.isfinite(bound):
        raise UserInputError(f"invalid constraint {text!r}: the bound must be a finite number")
    return Constraint(metric, operator, bound)


# ---------------------------------------------------------------------------------------------
# Search space


def search_space(scenario: Scenario) -> dict[str, BaseDistribution]:
    """Return the Optuna distribution of each parameter of the scenario's ``[sweep]`` section.

    A list of values becomes a categorical choice. A linear range becomes integers when its
    start and step are whole numbers (as ``RangeAxis.expand`` decides) and floats otherwise,
    both on the range's steps. A logarithmic range becomes log-uniform, over integers when it has
    ``integer = true``; its ``count`` is ignored. The sweep's ``sample`` and ``points`` settings
    apply to sweeps only. Raises ScenarioError when the scenario has no ``[sweep]`` section.
    """
    sweep = _sweep_settings(scenario)
    space: dict[str, BaseDistribution] = {}
    for name, axis in sweep.parameters.items():
        if isinstance(axis, ValuesAxis):
            space[name] = CategoricalDistribution(list(axis.values))
        elif isinstance(axis, RangeAxis):
            space[name] = _range_distribution(axis)
        elif isinstance(axis, LogAxis):
            space[name] = _log_distribution(scenario, name, axis)
        else:
            raise TypeError(f"unknown sweep axis type {type(axis).__name__} for {name}")
    return space


def _sweep_settings(scenario: Scenario) -> SweepSettings:
    if scenario.sweep is None:
        raise ScenarioError(
            f"{scenario.source or scenario.name}: no [sweep] section; add one to name the parameters to tune"
        )
    return scenario.sweep


def _range_distribution(axis: RangeAxis) -> BaseDistribution:
    # The last value of the range, which is below stop when the steps do not land on it.
    high = axis.expand()[-1]
    if all(float(value).is_integer() for value in (axis.start, axis.step)):
        return IntDistribution(int(axis.start), int(high), step=int(axis.step))
    return FloatDistribution(axis.start, float(high), step=axis.step)


def _log_distribution(scenario: Scenario, name: str, axis: LogAxis) -> BaseDistribution:
    if not axis.integer:
        return FloatDistribution(axis.log_start, axis.log_stop, log=True)
    values = axis.expand()
    low, high = int(min(values)), int(max(values))
    if low < 1:
        raise ScenarioError(
            f"{scenario.source or scenario.name}: sweep parameter '{name}' is an integer log range "
            f"from {axis.log_start:g}, which rounds to 0; a log-uniform search needs log_start of at "
            f"least 0.5"
        )
    return IntDistribution(low, high, log=True)


def _suggest(trial: optuna.Trial, name: str, distribution: BaseDistribution) -> Scalar:
    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(name, distribution.choices)  # type: ignore[arg-type]
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(
            name, distribution.low, distribution.high, step=distribution.step, log=distribution.log
        )
    if isinstance(distribution, FloatDistribution):
        return trial.suggest_float(
            name, distribution.low, distribution.high, step=distribution.step, log=distribution.log
        )
    raise TypeError(f"unsupported distribution {type(distribution).__name__} for {name}")


# ---------------------------------------------------------------------------------------------
# Running points


def tuned_design(scenario: Scenario) -> str:
    """Return the design to tune: ``sweep.design``, or the only design of the scenario."""
    sweep = _sweep_settings(scenario)
    if sweep.design is not None:
        return sweep.design
    if len(scenario.designs) == 1:
        return next(iter(scenario.designs))
    raise ScenarioError(
        f"{scenario.source or scenario.name}: the scenario defines several designs "
        f"({', '.join(scenario.designs)}); set design in the [sweep] section to the one to tune"
    )


class _PointRunner:
    """Runner of a point's replications, in this process or in a pool of worker processes."""

    def __init__(self, scenario: Scenario, design: str, pool: ProcessPoolExecutor | None) -> None:
        self.design = design
        self.seeds = replication_seeds(scenario.seed, _sweep_settings(scenario).replications)
        self.source = str(scenario.source) if scenario.source else None
        self.pool = pool

    def tasks(self, point_id: int, point: dict[str, Scalar], document: dict[str, Any]) -> list[SweepTask]:
        # A design's results do not depend on the other designs of the scenario (each gets its
        # own generators from the seed, and all share the arrivals), so only the tuned one runs.
        # The caller checks validity on the whole document, where settings of other designs count.
        single = dict(document)
        single["designs"] = {self.design: document["designs"][self.design]}
        return [
            SweepTask(point_id, replication, seed, point, single, self.source)
            for replication, seed in enumerate(self.seeds)
        ]

    def run(self, tasks: list[SweepTask]) -> list[dict[str, Any]]:
        """Return the tuned design's flattened metrics of each task, in task order."""
        if self.pool is None:
            frames = [run_sweep_task(task) for task in tasks]
        else:
            frames = list(self.pool.map(run_sweep_task, tasks))
        return [self._design_row(frame) for frame in frames]

    def _design_row(self, frame: pd.DataFrame) -> dict[str, Any]:
        rows = frame[frame["design"] == self.design]
        return rows.iloc[0].to_dict()


def _metric_value(row: dict[str, Any], metric: str) -> float:
    value = row.get(metric)
    if value is None:
        # The summary lists only the event drop reasons that occurred.
        return 0.0 if metric.startswith("dropped_events.") else math.nan
    return float(value)


def _metric_values(rows: list[dict[str, Any]], metrics: list[str]) -> dict[str, list[float]]:
    return {metric: [_metric_value(row, metric) for row in rows] for metric in metrics}


def check_metrics(metrics: list[str], row: dict[str, Any], design: str) -> None:
    """Raise UserInputError for a metric name that the design's summary does not have.

    ``row`` is the design's result row of one run, as ``run_sweep_task`` returns it.
    """
    fixed = {"point_id", "replication", "seed", "design"}
    known = {name for name in row if name not in fixed and not name.startswith("param.")}
    known |= {f"dropped_events.{reason.value}" for reason in DropReason}
    for metric in metrics:
        if metric in known:
            continue
        close = difflib.get_close_matches(metric, sorted(known), n=3, cutoff=0.6)
        if close:
            hint = f"did you mean {' or '.join(close)}?"
        else:
            hint = (
                "give a dotted name from the design's summary, such as lateness_s.p99, "
                "cost_usd.per_million_messages or concurrency.peak"
            )
        raise UserInputError(f"unknown metric {metric!r} (given to --minimize or --subject-to) for design {design}: {hint}")


# ---------------------------------------------------------------------------------------------
# The study


@dataclass
class TuneReport:
    """The best point of a study next to the scenario's starting settings."""

    # Parameter values of the best trial, by dotted path.
    best_point: dict[str, Any]
    # Mean and 95% confidence interval over the replications, for the objective and each
    # constraint metric. The interval is NaN with one replication, and both are NaN when a
    # replication has no value (such as lateness when nothing was delivered).
    best_mean: dict[str, float]
    best_ci: dict[str, tuple[float, float]]
    baseline_mean: dict[str, float]
    baseline_ci: dict[str, tuple[float, float]]
    # False when no trial meets every constraint, and best_point is then the one that
    # violates them least.
    feasible: bool
    # Trials in the study, over every run and in every state (complete, pruned, failed).
    trials: int
    study_path: Path
    design: str
    # The scenario's own values of the parameters (None where a key is absent).
    baseline_point: dict[str, Any]
    best_trial: int


def run_tune(
    scenario: Scenario,
    minimize: str,
    constraints: list[Constraint],
    trials: int,
    folder: Path,
    workers: int = 1,
) -> TuneReport:
    """Run ``trials`` more trials of the scenario's study in ``folder`` and report the best point.

    The study is ``folder/study.db``, named after the scenario. A rerun continues it, and raises
    UserInputError when it contains a study of other scenario settings, metric or constraints.
    A point that is an invalid combination of settings (``validate_document`` raises ValueError)
    is pruned (``optuna.TrialPruned``) without a run, so it never becomes the best point. A
    point already run in this study is not run again, because its results depend only on the
    point and the seeds. With ``workers`` above 1 the replications of each trial run in up to
    that many processes.

    The sampler is TPE, seeded from the scenario's seed and the number of trials already in the
    study. So a fresh folder always gives the same trials, and a continuation does not repeat
    the random startup points of the earlier run.
    """
    if trials < 1:
        raise UserInputError(f"invalid number of trials {trials}: give 1 or more")
    if workers < 1:
        raise UserInputError(f"invalid number of workers {workers}: give 1 or more")
    design = tuned_design(scenario)
    space = search_space(scenario)
    _check_parameter_paths(scenario)
    constraints = list(dict.fromkeys(constraints))
    metrics = list(dict.fromkeys([minimize, *(constraint.metric for constraint in constraints)]))
    settings = {
        "fingerprint": fingerprint(scenario),
        "design": design,
        "minimize": minimize,
        "constraints": [str(constraint) for constraint in constraints],
    }
    folder_existed = folder.exists()
    study_path = _prepare_folder(folder)

    replications = _sweep_settings(scenario).replications
    with _quiet_optuna(), _worker_pool(min(workers, replications)) as pool:
        runner = _PointRunner(scenario, design, pool)
        storage = optuna.storages.RDBStorage(url=f"sqlite:///{study_path.absolute()}")
        study = _open_study(scenario, storage, study_path, settings)

        # One replication first, so a misspelled metric fails before the rest of the work.
        baseline_tasks = runner.tasks(_BASELINE_POINT_ID, {}, scenario.document)
        baseline_rows = runner.run(baseline_tasks[:1])
        try:
            check_metrics(metrics, baseline_rows[0], design)
        except UserInputError:
            # A mistake in the command must not leave a new, empty study behind.
            if not folder_existed:
                storage.remove_session()
                shutil.rmtree(folder, ignore_errors=True)
            raise
        if _SETTINGS_ATTR not in study.user_attrs:
            study.set_user_attr(_SETTINGS_ATTR, settings)
        baseline_rows += runner.run(baseline_tasks[1:])
        baseline_values = _metric_values(baseline_rows, metrics)

        logger.info(
            "tuning design %s of %s: %d trials of %d replications each, study %s",
            design, scenario.name, trials, len(runner.seeds), study_path,
        )
        # The seed depends on the trials already stored, so the sampler is set after loading.
        study.sampler = _sampler(scenario, len(study.trials))
        objective = _Objective(scenario, runner, space, metrics, minimize, constraints, study)
        study.optimize(objective, n_trials=trials)

        best, feasible = select_best(study.trials, minimize, constraints)
        trial_count = len(study.trials)

    best_mean, best_ci = _summaries(best.user_attrs[_VALUES_ATTR], metrics)
    baseline_mean, baseline_ci = _summaries(baseline_values, metrics)
    verdict = "feasible" if feasible else "infeasible"
    logger.info("best trial %d of %d: %s (%s)", best.number, trial_count, best.params, verdict)
    return TuneReport(
        best_point={name: best.params[name] for name in space},
        best_mean=best_mean,
        best_ci=best_ci,
        baseline_mean=baseline_mean,
        baseline_ci=baseline_ci,
        feasible=feasible,
        trials=trial_count,
        study_path=study_path,
        design=design,
        baseline_point={name: _lookup(scenario, name) for name in space},
        best_trial=best.number,
    )


class _Objective:
    """Optuna objective: the mean of the minimized metric at a point, with constraint values."""

    def __init__(
        self,
        scenario: Scenario,
        runner: _PointRunner,
        space: dict[str, BaseDistribution],
        metrics: list[str],
        minimize: str,
        constraints: list[Constraint],
        study: optuna.Study,
    ) -> None:
        self.document = scenario.document
        self.runner = runner
        self.space = space
        self.metrics = metrics
        self.minimize = minimize
        self.constraints = constraints
        # Replication values of points run in earlier trials, by point.
        self.done: dict[tuple[tuple[str, Any], ...], dict[str, list[float]]] = {}
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if _VALUES_ATTR in trial.user_attrs:
                self.done[_point_key(trial.params)] = trial.user_attrs[_VALUES_ATTR]

    def __call__(self, trial: optuna.Trial) -> float:
        point = {name: _suggest(trial, name, distribution) for name, distribution in self.space.items()}
        document = apply_point(self.document, point)
        try:
            validate_document(document)
        except ValueError as error:
            reason = _invalid_reason(error)
            logger.info("trial %d: pruned invalid point %s: %s", trial.number, point, reason)
            trial.set_user_attr(_INVALID_ATTR, reason)
            raise optuna.TrialPruned(reason) from None

        key = _point_key(point)
        values = self.done.get(key)
        if values is None:
            rows = self.runner.run(self.runner.tasks(trial.number, point, document))
            values = _metric_values(rows, self.metrics)
            self.done[key] = values
        trial.set_user_attr(_VALUES_ATTR, values)

        means = {metric: _mean(values[metric]) for metric in self.metrics}
        for constraint in self.constraints:
            trial.set_constraint(str(constraint), constraint.violation(means[constraint.metric]))
        measured = ", ".join(f"{name} = {value:.4g}" for name, value in means.items())
        logger.info("trial %d: %s gives %s", trial.number, point, measured)
        objective = means[self.minimize]
        if math.isnan(objective):
            # Optuna fails a trial whose value is NaN, so a metric without data ranks last instead.
            logger.warning(
                "trial %d: %s has no value in some replication at %s, so the point ranks last",
                trial.number, self.minimize, point,
            )
            return math.inf
        return objective


def _invalid_reason(error: ValueError) -> str:
    if not isinstance(error, ValidationError):
        return str(error)
    # format_validation_error starts each line with a file name, which a trial's point lacks.
    lines = format_validation_error(Path("point"), error, Scenario).splitlines()
    return "; ".join(line.removeprefix("point: ") for line in lines)


def select_best(
    trials: list[FrozenTrial], minimize: str, constraints: list[Constraint]
) -> tuple[FrozenTrial, bool]:
    """Return the best complete trial and whether it meets every constraint.

    The best is the feasible trial with the lowest mean objective. When no trial is feasible,
    it is the one with the smallest total violation. Ties go to the lower objective, then to
    the earlier trial. Raises ScenarioError when no trial completed.
    """
    candidates = [
        trial for trial in trials if trial.state == TrialState.COMPLETE and _VALUES_ATTR in trial.user_attrs
    ]
    if not candidates:
        raise ScenarioError(
            "no trial completed: every point tried was an invalid combination of settings; "
            "run more trials or widen the sweep"
        )

    def objective(trial: FrozenTrial) -> float:
        value = _mean(trial.user_attrs[_VALUES_ATTR][minimize])
        return math.inf if math.isnan(value) else value

    def total_violation(trial: FrozenTrial) -> float:
        values = trial.user_attrs[_VALUES_ATTR]
        violations = [constraint.violation(_mean(values[constraint.metric])) for constraint in constraints]
        return sum(max(violation, 0.0) for violation in violations)

    feasible = [trial for trial in candidates if total_violation(trial) == 0]
    if feasible:
        return min(feasible, key=lambda trial: (objective(trial), trial.number)), True
    return min(candidates, key=lambda trial: (total_violation(trial), objective(trial), trial.number)), False


def _open_study(
    scenario: Scenario, storage: optuna.storages.RDBStorage, path: Path, settings: dict[str, Any]
) -> optuna.Study:
    study = optuna.create_study(
        storage=storage,
        study_name=scenario.name,
        direction="minimize",
        load_if_exists=True,
    )
    found = study.user_attrs.get(_SETTINGS_ATTR)
    if found is None and study.trials:
        raise UserInputError(
            f"{path}: contains a study {scenario.name!r} not written by drainsim tune; "
            f"use another --out folder"
        )
    if found is not None and found != settings:
        changed = ", ".join(key for key in settings if found.get(key) != settings[key])
        raise UserInputError(
            f"{path}: contains a study of {scenario.name!r} with other settings ({changed} differ); "
            f"use another --out folder to start a new study"
        )
    return study


def _sampler(scenario: Scenario, trials_done: int) -> optuna.samplers.TPESampler:
    # Seeding with the trial count keeps a continuation's random startup trials from repeating
    # the first run's.
    seed = int(np.random.SeedSequence([scenario.seed, trials_done]).generate_state(1)[0])
    return optuna.samplers.TPESampler(seed=seed)


def _prepare_folder(folder: Path) -> Path:
    if folder.exists() and not folder.is_dir():
        raise UserInputError(f"{folder}: output path is a file; give a folder with --out")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / STUDY_FILE
    if path.exists() and not _is_sqlite(path):
        raise UserInputError(f"{path}: is not a SQLite study file; use another --out folder")
    return path


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as file:
        header = file.read(16)
    # SQLite opens an empty file as an empty database.
    return header == b"SQLite format 3\x00" or header == b""


def _check_parameter_paths(scenario: Scenario) -> None:
    for name, axis in _sweep_settings(scenario).parameters.items():
        try:
            apply_point(scenario.document, {name: axis.expand()[0]})
        except KeyError:
            raise ScenarioError(
                f"{scenario.source or scenario.name}: invalid sweep parameter '{name}': no such table in the "
                f"scenario; name a key by its dotted path, such as designs.timer.period_s"
            ) from None


def _lookup(scenario: Scenario, path: str) -> Any:
    """Return the scenario's value at a dotted path, defaults included, or None."""
    value: Any = scenario.model_dump(mode="json", by_alias=True)
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _point_key(point: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(point.items()))


def _estimate(values: list[float]) -> tuple[float, float, float]:
    """Return the mean of replication values and its 95% CI, all NaN when any value is NaN.

    A metric without a value in one replication (lateness when nothing was delivered) must not
    be judged on the other replications alone.
    """
    array = np.asarray(values, dtype=np.float64)
    if np.isnan(array).any():
        return math.nan, math.nan, math.nan
    return confidence_interval(array)


def _mean(values: list[float]) -> float:
    return _estimate(values)[0]


def _summaries(
    values: dict[str, list[float]], metrics: list[str]
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    means: dict[str, float] = {}
    intervals: dict[str, tuple[float, float]] = {}
    for metric in metrics:
        mean, low, high = _estimate(values[metric])
        means[metric] = mean
        intervals[metric] = (low, high)
    return means, intervals


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Lower Optuna's logging to warnings (unless it is quieter already) for the block, then restore it."""
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(previous, optuna.logging.WARNING))
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)


@contextlib.contextmanager
def _worker_pool(workers: int) -> Iterator[ProcessPoolExecutor | None]:
    if workers <= 1:
        yield None
        return
    # "spawn" gives each worker a fresh interpreter: no inherited threads or locks from the CLI.
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


# ---------------------------------------------------------------------------------------------
# Report


def format_tune_report(report: TuneReport, minimize: str, constraints: list[Constraint]) -> str:
    """Format the best point next to the starting settings as a plain-text table."""
    lines = [f"design {report.design}: {report.trials} trials in {report.study_path}"]
    if report.feasible:
        lines.append(f"best point: trial {report.best_trial}, meeting every constraint")
    else:
        lines.append(f"no trial meets every constraint. Trial {report.best_trial} violates them least")
    lines.append("")

    parameter_rows = [["parameter", "start", "best"]]
    for name, value in report.best_point.items():
        parameter_rows.append([name, _format_scalar(report.baseline_point.get(name)), _format_scalar(value)])
    lines += _table(parameter_rows)
    lines.append("")

    metric_rows = [["metric", "goal", "start: mean [95% CI]", "best: mean [95% CI]"]]
    start = _format_estimate(report, minimize, baseline=True)
    best = _format_estimate(report, minimize, baseline=False)
    metric_rows.append([minimize, "minimize", start, best])
    for constraint in constraints:
        start = _constraint_cell(report, constraint, baseline=True)
        best = _constraint_cell(report, constraint, baseline=False)
        metric_rows.append([constraint.metric, f"{constraint.operator} {constraint.bound:.15g}", start, best])
    lines += _table(metric_rows)
    return "\n".join(lines)


def _format_estimate(report: TuneReport, metric: str, baseline: bool) -> str:
    mean = (report.baseline_mean if baseline else report.best_mean)[metric]
    low, high = (report.baseline_ci if baseline else report.best_ci)[metric]
    return f"{_format_number(mean)} [{_format_number(low)}, {_format_number(high)}]"


def _constraint_cell(report: TuneReport, constraint: Constraint, baseline: bool) -> str:
    """Format a constraint metric's estimate and whether its mean, and its whole CI, meet the bound."""
    mean = (report.baseline_mean if baseline else report.best_mean)[constraint.metric]
    low, high = (report.baseline_ci if baseline else report.best_ci)[constraint.metric]
    if not constraint.holds(mean):
        verdict = "fails"
    elif math.isnan(low) or (constraint.holds(low) and constraint.holds(high)):
        verdict = "holds"
    else:
        verdict = "mean holds, CI crosses bound"
    return f"{_format_estimate(report, constraint.metric, baseline)} {verdict}"


def _format_number(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4g}"


def _format_scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
