"""Tests for sim.sweep_plots: the Pareto front, the knee point and the PNG files of a sweep."""

from __future__ import annotations

import itertools
import logging
import math
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import LogNorm

from sim.plots import DPI, FIGURE_SIZE_IN
from sim.sweep_plots import (
    _build_view,
    _draw_heatmap,
    _metric,
    _spread_along_front,
    knee_point,
    pareto_front,
    write_sweep_plots,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HEATMAPS = ["heatmap_cost.png", "heatmap_lateness.png"]
LATENESS = "lateness_s.p99"
COST = "cost_usd.per_million_messages"
PERIOD = "designs.timer.period_s"
BASELINE = "designs.timer.baseline_s"
TIMEOUT = "designs.timer.timeout_s"


def make_points(
    axes: dict[str, list],
    replications: int = 3,
    designs: tuple[str, ...] = ("timer",),
    seed: int = 1,
) -> pd.DataFrame:
    """Build a points table like sweep.summarize_points writes, for the grid of ``axes``.

    Lateness grows with the first parameter over several decades and cost falls with it, so the
    points trade one against the other. The 95% CI is NaN with one replication.
    """
    rng = np.random.default_rng(seed)
    names = list(axes)
    rows = []
    for point_id, values in enumerate(itertools.product(*axes.values())):
        for design in designs:
            first = float(values[0]) if values else 60.0
            others = sum(float(value) for value in values[1:])
            lateness = first ** 2.5 / 20_000 * rng.uniform(0.7, 1.3) + others / 100_000
            cost = 60 / first * rng.uniform(0.9, 1.1) + others / 3000
            row = {"point_id": point_id, "design": design, "replications": replications}
            row.update({f"param.{name}": value for name, value in zip(names, values)})
            for metric, mean in ((LATENESS, lateness), (COST, cost), ("concurrency.peak", 3.0)):
                half_width = mean * rng.uniform(0.05, 0.8) if replications > 1 else math.nan
                row[f"{metric}.mean"] = mean
                row[f"{metric}.ci_low"] = mean - half_width
                row[f"{metric}.ci_high"] = mean + half_width
            rows.append(row)
    return pd.DataFrame(rows)


def make_concurrency(points: pd.DataFrame, end_s: float = 1_800.0) -> dict[int, pd.DataFrame]:
    """Return a concurrency step series per point_id: a timer that starts an instance each minute."""
    series = {}
    for point_id in points["point_id"].unique():
        starts = np.arange(0.0, end_s, 60.0)
        ends = starts + 30.0 + 5.0 * (int(point_id) % 7)
        at_s = np.concatenate([starts, ends])
        change = np.concatenate([np.ones(len(starts)), -np.ones(len(ends))])
        order = np.argsort(at_s, kind="stable")
        series[int(point_id)] = pd.DataFrame(
            {"at_s": at_s[order], "concurrency": np.cumsum(change[order]).astype(int)}
        )
    return series


def assert_valid_pngs(paths: list[Path], folder: Path, names: list[str]) -> None:
    assert [path.name for path in paths] == names
    for path in paths:
        assert path.parent == folder
        data = path.read_bytes()
        assert data[:8] == PNG_SIGNATURE, path.name
        image = matplotlib.image.imread(path)
        assert image.ndim == 3, path.name
        assert image.shape[1] >= round(FIGURE_SIZE_IN[0] * DPI) - 1, path.name
        # A blank canvas has one colour, and a drawn plot has many.
        rgb = (image[..., :3] * 255).astype(np.uint32)
        packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        assert len(np.unique(packed)) > 10, path.name


def frame(pairs: list[tuple[float, float]], index: list[int] | None = None) -> pd.DataFrame:
    x, y = zip(*pairs) if pairs else ((), ())
    return pd.DataFrame({"x": x, "y": y}, index=index, dtype=float)


# ---------------------------------------------------------------------------------------------
# pareto_front


def test_pareto_front_removes_dominated():
    points = frame([(3, 4), (1, 5), (2, 3), (4, 1), (2, 6), (5, 1)], index=[10, 20, 30, 40, 50, 60])

    front = pareto_front(points, "x", "y")

    assert list(front.index) == [20, 30, 40]
    assert list(front["x"]) == [1, 2, 4]
    assert list(front["y"]) == [5, 3, 1]


def test_pareto_front_keeps_equal_pairs():
    points = frame([(2, 1), (1, 2), (1, 2)], index=[0, 1, 2])

    front = pareto_front(points, "x", "y")

    assert list(front.index) == [1, 2, 0]


def test_pareto_front_tie_on_one_axis():
    same_x = frame([(1, 3), (1, 2)], index=[0, 1])
    same_y = frame([(3, 2), (1, 2)], index=[0, 1])

    assert list(pareto_front(same_x, "x", "y").index) == [1]
    assert list(pareto_front(same_y, "x", "y").index) == [1]


def test_pareto_front_excludes_nan():
    points = frame([(math.nan, 0), (0, math.nan), (2, 2), (3, 1)], index=[0, 1, 2, 3])

    front = pareto_front(points, "x", "y")

    assert list(front.index) == [2, 3]


def test_pareto_front_all_nan_is_empty():
    points = frame([(math.nan, 1), (2, math.nan)])

    front = pareto_front(points, "x", "y")

    assert front.empty
    assert list(front.columns) == ["x", "y"]


def test_pareto_front_single_row():
    points = frame([(4, 4)], index=[7])

    assert list(pareto_front(points, "x", "y").index) == [7]


def test_pareto_front_keeps_other_columns():
    points = frame([(1, 2), (2, 1), (3, 3)]).assign(name=["a", "b", "c"])

    front = pareto_front(points, "x", "y")

    assert list(front["name"]) == ["a", "b"]


def test_pareto_front_infinite_lateness():
    points = frame([(1, math.inf), (2, math.inf)], index=[0, 1])

    assert list(pareto_front(points, "x", "y").index) == [0]


def test_pareto_front_missing_column():
    with pytest.raises(ValueError, match="missing column"):
        pareto_front(frame([(1, 1)]), "x", "cost")


def test_pareto_front_matches_brute_force():
    rng = np.random.default_rng(3)
    points = frame(list(zip(rng.integers(0, 8, 200), rng.integers(0, 8, 200))))
    x, y = points["x"].to_numpy(), points["y"].to_numpy()
    dominated = [
        bool(np.any((x <= x[i]) & (y <= y[i]) & ((x < x[i]) | (y < y[i])))) for i in range(len(points))
    ]
    expected = sorted(np.flatnonzero(~np.array(dominated)), key=lambda i: (x[i], y[i], i))

    assert list(pareto_front(points, "x", "y").index) == expected


# ---------------------------------------------------------------------------------------------
# knee_point


def test_knee_point_scales_axes():
    # Unscaled, (0, 1) is nearest the origin. After scaling x by 1/1000, (100, 0.2) is.
    front = frame([(0, 1), (100, 0.2), (1000, 0)], index=[5, 6, 7])

    assert knee_point(front, "x", "y") == 6


def test_knee_point_symmetric_front():
    front = frame([(0, 10), (1, 1), (10, 0)], index=[0, 1, 2])

    assert knee_point(front, "x", "y") == 1


def test_knee_point_returns_python_int():
    front = frame([(0, 10), (1, 1), (10, 0)])

    knee = knee_point(front, "x", "y")

    assert type(knee) is int


def test_knee_point_empty_front():
    assert knee_point(frame([]), "x", "y") is None


def test_knee_point_single_row():
    assert knee_point(frame([(3, 3)], index=[42]), "x", "y") == 42


def test_knee_point_tie_takes_first():
    front = frame([(0, 1), (1, 0)], index=[8, 9])

    assert knee_point(front, "x", "y") == 8


def test_knee_point_ignores_nan_rows():
    front = frame([(math.nan, 0), (0, 1), (1, 0.5), (2, 0)], index=[0, 1, 2, 3])

    assert knee_point(front, "x", "y") == 2


# ---------------------------------------------------------------------------------------------
# Choice of frontier points for the concurrency plot


def test_spread_short_front_takes_all():
    assert _spread_along_front(4, knee_position=2, limit=6) == [0, 1, 2, 3]


def test_spread_long_front_includes_knee():
    positions = _spread_along_front(15, knee_position=1, limit=6)

    assert len(positions) == 6
    assert 1 in positions
    assert positions == sorted(positions)
    assert positions[-1] == 14


def test_spread_long_front_evenly():
    assert _spread_along_front(11, knee_position=4, limit=6) == [0, 2, 4, 6, 8, 10]


# ---------------------------------------------------------------------------------------------
# write_sweep_plots


@pytest.fixture(scope="module")
def three_parameter_points() -> pd.DataFrame:
    return make_points({PERIOD: [30, 60, 120, 300], BASELINE: [10, 30, 60], TIMEOUT: [90, 300, 900]},
                       designs=("timer", "recursive"))


def test_write_sweep_plots_three_parameters(tmp_path, three_parameter_points):
    paths = write_sweep_plots(tmp_path, "tune", three_parameter_points, "timer")

    assert_valid_pngs(paths, tmp_path, ["frontier.png", *HEATMAPS])


def test_write_sweep_plots_two_parameters(tmp_path):
    points = make_points({PERIOD: [60, 120, 300], BASELINE: [10, 60]})

    paths = write_sweep_plots(tmp_path, "tune", points, "timer")

    assert_valid_pngs(paths, tmp_path, ["frontier.png", *HEATMAPS])


def test_write_sweep_plots_one_parameter(tmp_path):
    points = make_points({PERIOD: [30, 60, 120, 300], BASELINE: [60]})

    paths = write_sweep_plots(tmp_path, "tune", points, "timer")

    assert_valid_pngs(paths, tmp_path, ["frontier.png", *HEATMAPS])
    # The one-row heatmap is shorter than the standard figure.
    assert matplotlib.image.imread(tmp_path / "heatmap_cost.png").shape[0] < FIGURE_SIZE_IN[1] * DPI


def test_write_sweep_plots_single_point(tmp_path):
    points = make_points({PERIOD: [60], BASELINE: [30]}, replications=1)

    paths = write_sweep_plots(tmp_path, "tune", points, "timer", concurrency=make_concurrency(points))

    assert_valid_pngs(paths, tmp_path, ["frontier.png", "frontier_concurrency.png"])


def test_write_sweep_plots_with_concurrency(tmp_path, three_parameter_points):
    concurrency = make_concurrency(three_parameter_points)

    paths = write_sweep_plots(tmp_path, "tune", three_parameter_points, "timer", concurrency=concurrency)

    assert_valid_pngs(paths, tmp_path, ["frontier.png", "frontier_concurrency.png", *HEATMAPS])


def test_write_sweep_plots_without_concurrency(tmp_path, three_parameter_points):
    paths = write_sweep_plots(tmp_path, "tune", three_parameter_points, "timer")

    assert "frontier_concurrency.png" not in [path.name for path in paths]
    assert not (tmp_path / "frontier_concurrency.png").exists()


def test_write_sweep_plots_missing_series(tmp_path, caplog):
    points = make_points({PERIOD: [30, 60, 120]})
    concurrency = make_concurrency(points)
    del concurrency[0]

    with caplog.at_level(logging.WARNING, logger="sim.sweep_plots"):
        paths = write_sweep_plots(tmp_path, "tune", points, "timer", concurrency=concurrency)

    assert_valid_pngs(paths, tmp_path, ["frontier.png", "frontier_concurrency.png", *HEATMAPS])
    assert "no concurrency series given for frontier point 0" in caplog.text


def test_write_sweep_plots_all_nan_lateness(tmp_path):
    points = make_points({PERIOD: [60, 120], BASELINE: [10, 60]})
    points[[f"{LATENESS}.mean", f"{LATENESS}.ci_low", f"{LATENESS}.ci_high"]] = math.nan

    paths = write_sweep_plots(tmp_path, "tune", points, "timer", concurrency=make_concurrency(points))

    assert_valid_pngs(paths, tmp_path, ["frontier.png", "frontier_concurrency.png", *HEATMAPS])


def test_write_sweep_plots_large_sweep(tmp_path):
    axes = {PERIOD: list(range(10, 110, 10)), BASELINE: list(range(10)), TIMEOUT: list(range(10))}
    points = make_points(axes)
    assert len(points) == 1_000

    paths = write_sweep_plots(tmp_path, "tune", points, "timer", concurrency=make_concurrency(points))

    assert_valid_pngs(paths, tmp_path, ["frontier.png", "frontier_concurrency.png", *HEATMAPS])


def test_write_sweep_plots_creates_folder(tmp_path):
    folder = tmp_path / "sweep" / "plots"

    paths = write_sweep_plots(folder, "tune", make_points({PERIOD: [60, 120]}), "timer")

    assert folder.is_dir()
    assert_valid_pngs(paths, folder, ["frontier.png", *HEATMAPS])


def test_write_sweep_plots_unknown_design(tmp_path, three_parameter_points):
    with pytest.raises(ValueError, match="no row for design 'hybrid'") as error:
        write_sweep_plots(tmp_path, "tune", three_parameter_points, "hybrid")

    assert "Designs present: recursive, timer" in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_write_sweep_plots_missing_metric(tmp_path, three_parameter_points):
    with pytest.raises(ValueError, match="lateness_s.p50.mean"):
        write_sweep_plots(tmp_path, "tune", three_parameter_points, "timer", lateness_metric="lateness_s.p50")


def test_write_sweep_plots_leaves_no_pyplot_figures(tmp_path):
    import matplotlib.pyplot as plt

    paths = write_sweep_plots(tmp_path, "tune", make_points({PERIOD: [60, 120]}), "timer")

    assert paths
    assert plt.get_fignums() == []


# ---------------------------------------------------------------------------------------------
# Heatmap details that the PNG files cannot show


def test_heatmap_title_names_averaged(three_parameter_points):
    rows = three_parameter_points[three_parameter_points["design"] == "timer"]

    figure = _draw_heatmap(_build_view("tune", "timer", rows), rows, _metric(COST), allow_log=False)

    title = figure.axes[0].get_title()
    assert title.startswith("tune: timer design")
    assert f"averages over {TIMEOUT}" in title
    assert figure.axes[0].get_xlabel() == PERIOD
    assert figure.axes[0].get_ylabel() == BASELINE


def test_heatmap_log_scale_for_wide_lateness(three_parameter_points):
    rows = three_parameter_points[three_parameter_points["design"] == "timer"]
    view = _build_view("tune", "timer", rows)

    lateness_figure = _draw_heatmap(view, rows, _metric(LATENESS), allow_log=True)
    cost_figure = _draw_heatmap(view, rows, _metric(COST), allow_log=False)

    assert isinstance(lateness_figure.axes[0].images[0].norm, LogNorm)
    assert not isinstance(cost_figure.axes[0].images[0].norm, LogNorm)
    assert "lower is better" in lateness_figure.axes[1].get_ylabel()


def test_heatmap_linear_scale_for_narrow_lateness():
    points = make_points({PERIOD: [60, 70], BASELINE: [10, 60]})
    view = _build_view("tune", "timer", points)

    figure = _draw_heatmap(view, points, _metric(LATENESS), allow_log=True)

    assert not isinstance(figure.axes[0].images[0].norm, LogNorm)


def test_heatmap_cell_labels(three_parameter_points):
    rows = three_parameter_points[three_parameter_points["design"] == "timer"]

    figure = _draw_heatmap(_build_view("tune", "timer", rows), rows, _metric(COST), allow_log=False)

    labels = [text.get_text() for text in figure.axes[0].texts]
    assert len(labels) == 4 * 3
    assert all(label.startswith("$") for label in labels)


def test_knee_point_log_scale_changes_choice():
    front = pd.DataFrame({"cost": [0.18, 0.30, 0.53, 1.2], "late": [302.0, 35.0, 0.96, 0.42]})

    # Linearly, the 302 s point squeezes every other lateness near 0, so the knee is the cheap
    # 35 s point. On the plot's log scale the 0.96 s point is nearest the ideal corner.
    assert knee_point(front, "cost", "late") == 1
    assert knee_point(front, "cost", "late", log_y=True) == 2
