"""The tuner: constraint parsing, the search space, and seeded Optuna studies on a small scenario."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from sim.errors import ScenarioError, UserInputError
from sim.scenario import Scenario
from sim.sweep import SweepTask, run_sweep_task
from sim.tune import (
    Constraint,
    TuneReport,
    format_tune_report,
    parse_constraint,
    run_tune,
    search_space,
    select_best,
)

OBJECTIVE = "cost_usd.per_million_messages"
# Met by periods of 10 s and 30 s (p99 lateness about 0.2 s and 15 s), missed by 60 s and 120 s
# (about 40 s and 100 s).
LATENESS_BOUND = 30.0


def scenario_data(parameters: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    """Return a five-minute bursty scenario with one timer design and a two-replication sweep."""
    data: dict[str, Any] = {
        "name": "tune-small",
        "seed": 7,
        "duration_s": 300,
        "drain_s": 120,
        "workload": {
            "kind": "bursty",
            "base_rate_per_s": 1,
            "burst_rate_per_s": 10,
            "burst_length_s": 60,
            "burst_period_s": 300,
            "burst_start_s": 60,
            "herd_size": 20,
            "herd_period_s": 60,
            "delay_s": {"low": 0, "high": 120},
        },
        "queue": {"visibility_timeout_s": 30},
        "designs": {
            "timer": {"kind": "timer", "period_s": 60, "baseline_s": 10, "timeout_s": 130, "wait_s": 3, "safety_margin_s": 2},
        },
        "sweep": {
            "replications": 2,
            "design": "timer",
            "parameters": parameters
            or {
                "designs.timer.period_s": {"values": [10, 30, 60, 120]},
                "designs.timer.timeout_s": {"values": [130, 200]},
            },
        },
    }
    data.update(top)
    return data


def small_scenario(parameters: dict[str, Any] | None = None, **top: Any) -> Scenario:
    return Scenario.model_validate(scenario_data(parameters, **top))


def lateness_bound(bound: float = LATENESS_BOUND) -> list[Constraint]:
    return [Constraint("lateness_s.p99", "<=", bound)]


def load_study(report: TuneReport) -> optuna.Study:
    return optuna.load_study(study_name="tune-small", storage=f"sqlite:///{report.study_path}")


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> TuneReport:
    folder = tmp_path_factory.mktemp("tune")
    return run_tune(small_scenario(), OBJECTIVE, lateness_bound(), trials=8, folder=folder)


# ---------------------------------------------------------------------------------------------
# Constraints


@pytest.mark.parametrize(
    ("text", "metric", "operator", "bound"),
    [
        ("lateness_s.p99<=2", "lateness_s.p99", "<=", 2.0),
        ("concurrency.peak >= 1", "concurrency.peak", ">=", 1.0),
        ("cost_usd.total<0.5", "cost_usd.total", "<", 0.5),
        (" undelivered.total > -1e3 ", "undelivered.total", ">", -1000.0),
    ],
)
def test_parse_constraint_forms(text, metric, operator, bound):
    assert parse_constraint(text) == Constraint(metric, operator, bound)


@pytest.mark.parametrize(
    "text",
    ["lateness_s.p99", "lateness_s.p99=2", "lateness_s.p99==2", "lateness_s.p99<=", "<=2", "lateness_s.p99<=two", "p99 <= 2 s"],
)
def test_parse_constraint_rejects_syntax(text):
    with pytest.raises(UserInputError) as caught:
        parse_constraint(text)
    message = str(caught.value)
    assert repr(text) in message
    assert "METRIC<=VALUE, METRIC>=VALUE, METRIC<VALUE or METRIC>VALUE" in message


def test_parse_constraint_rejects_nan_bound():
    with pytest.raises(UserInputError, match="finite"):
        parse_constraint("lateness_s.p99<=nan")


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("<=", 1.5, -0.5),
        ("<=", 2.0, 0.0),
        ("<=", 3.0, 1.0),
        (">=", 3.0, -1.0),
        (">=", 1.5, 0.5),
        ("<", 1.0, -1.0),
        (">", 2.5, -0.5),
        ("<=", math.nan, 1.0),
        (">", math.nan, 1.0),
    ],
)
def test_constraint_violation(operator, value, expected):
    assert Constraint("m", operator, 2.0).violation(value) == pytest.approx(expected)


@pytest.mark.parametrize("operator", ["<", ">"])
def test_strict_constraint_fails_at_bound(operator):
    constraint = Constraint("m", operator, 2.0)
    assert constraint.violation(2.0) > 0
    assert not constraint.holds(2.0)


# ---------------------------------------------------------------------------------------------
# Search space


def test_search_space_kinds():
    scenario = small_scenario(
        {
            "designs.timer.period_s": {"values": [30, 60]},
            "designs.timer.wait_s": {"start": 0, "stop": 10, "step": 2},
            "designs.timer.safety_margin_s": {"start": 0.5, "stop": 2.2, "step": 0.5},
            "designs.timer.memory_mb": {"log_start": 128, "log_stop": 1024, "count": 4, "integer": True},
            "designs.timer.baseline_s": {"log_start": 1, "log_stop": 100, "count": 3},
        }
    )
    space = search_space(scenario)
    assert space["designs.timer.period_s"] == CategoricalDistribution([30, 60])
    assert space["designs.timer.wait_s"] == IntDistribution(0, 10, step=2)
    # The range stops at its last step, 2.0, below stop.
    assert space["designs.timer.safety_margin_s"] == FloatDistribution(0.5, 2.0, step=0.5)
    assert space["designs.timer.memory_mb"] == IntDistribution(128, 1024, log=True)
    assert space["designs.timer.baseline_s"] == FloatDistribution(1.0, 100.0, log=True)


def test_search_space_rejects_log_rounding_to_zero():
    scenario = small_scenario({"designs.timer.wait_s": {"log_start": 0.2, "log_stop": 10, "count": 3, "integer": True}})
    with pytest.raises(ScenarioError, match="designs.timer.wait_s"):
        search_space(scenario)


def test_search_space_needs_sweep():
    data = scenario_data()
    del data["sweep"]
    with pytest.raises(ScenarioError, match=r"no \[sweep\] section"):
        search_space(Scenario.model_validate(data))


# ---------------------------------------------------------------------------------------------
# Studies


def test_tune_meets_bound(tuned):
    assert tuned.feasible
    assert tuned.best_mean["lateness_s.p99"] <= LATENESS_BOUND
    assert tuned.best_point["designs.timer.period_s"] in (10, 30)
    assert tuned.trials == 8
    assert tuned.design == "timer"
    assert tuned.baseline_point == {"designs.timer.period_s": 60, "designs.timer.timeout_s": 130}


def test_tune_picks_cheapest_feasible(tuned):
    study = load_study(tuned)
    feasible = [
        trial.value
        for trial in study.get_trials(states=(TrialState.COMPLETE,))
        if all(value <= 0 for value in trial.constraints.values())
    ]
    assert feasible
    assert tuned.best_mean[OBJECTIVE] == pytest.approx(min(feasible))


def test_tune_reports_intervals(tuned):
    for metric in (OBJECTIVE, "lateness_s.p99"):
        low, high = tuned.best_ci[metric]
        assert low <= tuned.best_mean[metric] <= high
        low, high = tuned.baseline_ci[metric]
        assert low <= tuned.baseline_mean[metric] <= high
    # The scenario as written (a 60 s period) misses the bound.
    assert tuned.baseline_mean["lateness_s.p99"] > LATENESS_BOUND


def test_format_tune_report(tuned):
    text = format_tune_report(tuned, OBJECTIVE, lateness_bound())
    assert "8 trials" in text
    assert str(tuned.study_path) in text
    assert "designs.timer.period_s" in text
    assert "meeting every constraint" in text
    lateness_line = next(line for line in text.splitlines() if line.startswith("lateness_s.p99"))
    assert "<= 30" in lateness_line
    # The starting settings miss the bound and the best point meets it.
    assert "fails" in lateness_line
    assert "holds" in lateness_line


def report_with(mean: float, interval: tuple[float, float]) -> TuneReport:
    return TuneReport(
        best_point={"designs.timer.period_s": 30},
        best_mean={OBJECTIVE: 1.0, "lateness_s.p99": mean},
        best_ci={OBJECTIVE: (0.9, 1.1), "lateness_s.p99": interval},
        baseline_mean={OBJECTIVE: 2.0, "lateness_s.p99": 50.0},
        baseline_ci={OBJECTIVE: (1.9, 2.1), "lateness_s.p99": (45.0, 55.0)},
        feasible=True,
        trials=3,
        study_path=Path("study.db"),
        design="timer",
        baseline_point={"designs.timer.period_s": 60},
        best_trial=2,
    )


@pytest.mark.parametrize(
    ("mean", "interval", "verdict"),
    [
        (20.0, (15.0, 25.0), "holds"),
        (20.0, (5.0, 35.0), "mean holds, CI crosses bound"),
        (20.0, (math.nan, math.nan), "holds"),
        (40.0, (35.0, 45.0), "fails"),
    ],
)
def test_format_tune_report_verdicts(mean, interval, verdict):
    text = format_tune_report(report_with(mean, interval), OBJECTIVE, lateness_bound())
    lateness_line = next(line for line in text.splitlines() if line.startswith("lateness_s.p99"))
    assert "50 [45, 55] fails" in lateness_line
    assert lateness_line.endswith(f"] {verdict}")


def test_tune_is_deterministic(tuned, tmp_path):
    again = run_tune(small_scenario(), OBJECTIVE, lateness_bound(), trials=8, folder=tmp_path)
    assert again.best_point == tuned.best_point
    assert again.best_mean == tuned.best_mean
    first_params = [trial.params for trial in load_study(tuned).trials]
    second_params = [trial.params for trial in load_study(again).trials]
    assert second_params == first_params


def test_tune_continues_study(tmp_path):
    first = run_tune(small_scenario(), OBJECTIVE, lateness_bound(), trials=4, folder=tmp_path)
    second = run_tune(small_scenario(), OBJECTIVE, lateness_bound(), trials=4, folder=tmp_path)
    assert first.trials == 4
    assert second.trials == 8
    assert len(load_study(second).trials) == 8
    # The second best is chosen from all eight trials, so it is no worse than the first.
    assert second.best_mean[OBJECTIVE] <= first.best_mean[OBJECTIVE]


def test_tune_infeasible_bound(tmp_path):
    constraints = lateness_bound(0.001)
    report = run_tune(small_scenario(), OBJECTIVE, constraints, trials=4, folder=tmp_path)
    assert not report.feasible
    assert report.best_mean["lateness_s.p99"] > 0.001
    text = format_tune_report(report, OBJECTIVE, constraints)
    assert "no trial meets every constraint" in text


def test_tune_infeasible_picks_least_violation(tmp_path):
    report = run_tune(small_scenario(), OBJECTIVE, lateness_bound(0.001), trials=4, folder=tmp_path)
    lateness = [
        trial.user_attrs["values"]["lateness_s.p99"]
        for trial in load_study(report).get_trials(states=(TrialState.COMPLETE,))
    ]
    assert report.best_mean["lateness_s.p99"] == pytest.approx(min(sum(values) / len(values) for values in lateness))


def completed_trial(number: int, cost: list[float], lateness: list[float]) -> optuna.trial.FrozenTrial:
    trial = optuna.trial.create_trial(
        params={"designs.timer.period_s": number},
        distributions={"designs.timer.period_s": IntDistribution(0, 100)},
        value=sum(cost) / len(cost),
        user_attrs={"values": {OBJECTIVE: cost, "lateness_s.p99": lateness}},
    )
    trial.number = number
    return trial


def test_select_best_rejects_missing_value():
    # Trial 1 is cheaper and meets the bound in one replication, but has no lateness in the other.
    trials = [completed_trial(0, [2.0, 2.0], [10.0, 12.0]), completed_trial(1, [1.0, 1.0], [5.0, math.nan])]
    best, feasible = select_best(trials, OBJECTIVE, lateness_bound())
    assert feasible
    assert best.number == 0


def test_select_best_least_violation():
    trials = [completed_trial(0, [1.0, 1.0], [50.0, 60.0]), completed_trial(1, [2.0, 2.0], [35.0, 45.0])]
    best, feasible = select_best(trials, OBJECTIVE, lateness_bound())
    assert not feasible
    assert best.number == 1


def test_unknown_metric_suggests_name(tmp_path):
    with pytest.raises(UserInputError) as caught:
        run_tune(small_scenario(), OBJECTIVE, [Constraint("lateness.p99", "<=", 2)], trials=2, folder=tmp_path)
    message = str(caught.value)
    assert "'lateness.p99'" in message
    assert "lateness_s.p99" in message


def test_unknown_objective_adds_no_trials(tmp_path):
    with pytest.raises(UserInputError, match="cost_usd.per_million_messages"):
        run_tune(small_scenario(), "cost_usd.per_millon_messages", [], trials=2, folder=tmp_path)
    study = optuna.load_study(study_name="tune-small", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert study.trials == []


def test_invalid_points_are_pruned(tmp_path):
    # A 5 s timeout is invalid (not above the 10 s baseline, nor the 2 s margin plus the 3 s
    # wait), so half the points are invalid combinations.
    parameters = {
        "designs.timer.period_s": {"values": [30, 60]},
        "designs.timer.timeout_s": {"values": [5, 130]},
    }
    report = run_tune(small_scenario(parameters), OBJECTIVE, [], trials=6, folder=tmp_path)
    trials = load_study(report).trials
    pruned = [trial for trial in trials if trial.state == TrialState.PRUNED]
    assert pruned
    for trial in trials:
        assert (trial.state == TrialState.PRUNED) == (trial.params["designs.timer.timeout_s"] == 5)
    assert "timeout_s" in pruned[0].user_attrs["invalid"]
    assert report.best_point["designs.timer.timeout_s"] == 130


def test_rerun_with_other_constraint_rejected(tmp_path):
    run_tune(small_scenario(), OBJECTIVE, lateness_bound(), trials=1, folder=tmp_path)
    with pytest.raises(UserInputError, match="constraints differ"):
        run_tune(small_scenario(), OBJECTIVE, lateness_bound(5), trials=1, folder=tmp_path)


def test_rerun_with_other_scenario_rejected(tmp_path):
    run_tune(small_scenario(), OBJECTIVE, [], trials=1, folder=tmp_path)
    with pytest.raises(UserInputError, match="fingerprint differ"):
        run_tune(small_scenario(seed=8), OBJECTIVE, [], trials=1, folder=tmp_path)


def test_tune_restores_optuna_verbosity(tmp_path):
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO)
    try:
        run_tune(small_scenario(), OBJECTIVE, [], trials=1, folder=tmp_path)
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
    finally:
        optuna.logging.set_verbosity(previous)


def test_several_designs_need_sweep_design(tmp_path):
    data = scenario_data()
    data["designs"]["chain"] = {"kind": "recursive", "allow_recursion": True}
    del data["sweep"]["design"]
    with pytest.raises(ScenarioError, match="set design in the \\[sweep\\] section"):
        run_tune(Scenario.model_validate(data), OBJECTIVE, [], trials=1, folder=tmp_path)


def test_other_designs_do_not_change_results():
    # The tuner runs only the tuned design, which is right only if the other designs leave its
    # results unchanged.
    data = scenario_data()
    data["designs"]["chain"] = {"kind": "recursive", "allow_recursion": True}
    both = run_sweep_task(SweepTask(0, 0, 11, {}, data, None))
    alone = run_sweep_task(SweepTask(0, 0, 11, {}, scenario_data(), None))
    timer_both = both[both["design"] == "timer"].reset_index(drop=True)
    pd.testing.assert_frame_equal(timer_both, alone)


def test_output_path_file_rejected(tmp_path):
    path = tmp_path / "study"
    path.write_text("not a folder", encoding="utf-8")
    with pytest.raises(UserInputError, match="output path is a file"):
        run_tune(small_scenario(), OBJECTIVE, [], trials=1, folder=path)


def test_foreign_study_file_rejected(tmp_path):
    (tmp_path / "study.db").write_text("not a database", encoding="utf-8")
    with pytest.raises(UserInputError, match="not a SQLite study file"):
        run_tune(small_scenario(), OBJECTIVE, [], trials=1, folder=tmp_path)
