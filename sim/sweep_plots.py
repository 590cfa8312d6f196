"""Draw the PNG plots of a sweep for one design: metric heatmaps, the cost and lateness frontier,
and the concurrency of frontier points.

The input is the points table of a sweep (``points.parquet``): one row per point and design,
with ``param.<dotted path>`` columns and ``<metric>.mean``, ``.ci_low`` and ``.ci_high`` columns.
Lower is better for both plotted metrics. The Pareto frontier is the set of points that no other
point matches or beats on both cost and lateness while being strictly better on one.
Figures use matplotlib's object API and the sizes, colours and dpi of ``sim.plots``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from sim.plots import (
    DPI,
    FIGURE_SIZE_IN,
    LATENESS_FLOOR_S,
    _assign_colours,
    _choose_time_unit,
    _format_seconds,
    _format_usd,
    _require_columns,
    _use_plain_log_labels,
    save_figures,
)

logger = logging.getLogger(__name__)

PARAMETER_PREFIX = "param."
MAX_CONCURRENCY_PANELS = 6

# A 20 x 20 heatmap of 9 x 5 in still fits 6 pt value labels. Larger grids are left unlabelled.
MAX_ANNOTATED_CELLS = 400
# Maximum number of tick labels per heatmap axis. On longer axes every n-th value is labelled.
MAX_TICK_LABELS = 20
# The colour scale of the lateness heatmap turns logarithmic when max / min exceeds this ratio.
LOG_COLOUR_RATIO = 100.0

_COLOUR_MAP = "viridis"
_MISSING_CELL_COLOUR = "0.88"
_OTHER_POINT_COLOUR = "0.55"
_ERROR_BAR_COLOUR = "0.75"
_CONCURRENCY_COLUMNS = ("at_s", "concurrency")


@dataclass(frozen=True)
class _SweepView:
    """Values shared by every plot of one design's sweep."""

    scenario_name: str
    design: str
    colour: str
    # Dotted paths of every swept parameter, and of those with more than one value, in column order.
    parameters: tuple[str, ...]
    varied: tuple[str, ...]
    # Dotted path to the name used in point labels, without the prefix all parameters share.
    short_names: dict[str, str]


@dataclass(frozen=True)
class _Metric:
    column: str
    name: str
    unit: str


class _DollarFormatter(ScalarFormatter):
    """Tick labels in dollars with as many decimals as ScalarFormatter gives every tick ($0.5, $1.0, $1.5)."""

    def __init__(self) -> None:
        super().__init__(useOffset=False)
        self.set_scientific(False)

    def __call__(self, x, pos=None):
        label = super().__call__(x, pos)
        if not label:
            return label
        # With the default axes.unicode_minus, ScalarFormatter writes U+2212 MINUS SIGN.
        return f"\u2212${label[1:]}" if label.startswith("\u2212") else f"${label}"


def pareto_front(points: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Return the rows of ``points`` that no other row dominates when minimizing ``x`` and ``y``.

    A row dominates another when it is lower or equal in both columns and lower in one, so rows
    with equal (x, y) pairs are all kept. Rows with NaN in ``x`` or ``y`` are left out. The result
    keeps the index labels and is sorted by ``x`` (rows with equal pairs stay in input order).

    Raises ValueError if ``x`` or ``y`` is not a column of ``points``.
    """
    _require_columns("points", points, (x, y))
    x_values = points[x].to_numpy(dtype=float)
    y_values = points[y].to_numpy(dtype=float)
    positions = np.flatnonzero(~(np.isnan(x_values) | np.isnan(y_values)))
    # lexsort sorts by its last key first, so this orders by x, then y, then row position.
    order = positions[np.lexsort((y_values[positions], x_values[positions]))]
    xs, y_sorted = x_values[order], y_values[order]

    # Every row sorted before a run of equal pairs has x <= the run's x, so the run is dominated
    # exactly when one of those rows has y <= the run's y.
    starts_run = np.ones(len(order), dtype=bool)
    starts_run[1:] = (xs[1:] != xs[:-1]) | (y_sorted[1:] != y_sorted[:-1])
    lowest_y_before = np.full(len(order), np.inf)
    lowest_y_before[1:] = np.minimum.accumulate(y_sorted)[:-1]
    run_of_row = np.cumsum(starts_run) - 1
    lowest_y_before_run = lowest_y_before[np.flatnonzero(starts_run)][run_of_row]
    # The first run has nothing before it, which keeps it even when its y is +inf.
    keep = (y_sorted < lowest_y_before_run) | (run_of_row == 0)
    return points.iloc[order[keep]]


def knee_point(front: pd.DataFrame, x: str, y: str, log_y: bool = False) -> int | None:
    """Return the index label of the front row closest to the ideal point (min x, min y).

    Each axis is scaled linearly to [0, 1] over the front's finite values before measuring the
    Euclidean distance. With ``log_y``, ``y`` is scaled on a log scale, as the frontier plot draws
    lateness, and values at or below 0 are ignored. An axis on which all rows are equal scales to 0 and decides nothing.
    Rows with a non-finite ``x`` or ``y`` are ignored. Ties go to the first row. Returns None
    when no row is left.

    Raises ValueError if ``x`` or ``y`` is not a column of ``front``.
    """
    _require_columns("front", front, (x, y))
    values = front[[x, y]].to_numpy(dtype=float, copy=True)
    if log_y:
        with np.errstate(divide="ignore", invalid="ignore"):
            values[:, 1] = np.where(values[:, 1] > 0, np.log10(values[:, 1]), np.nan)
    finite = np.isfinite(values).all(axis=1)
    if not finite.any():
        return None
    values = values[finite]
    labels = front.index[finite]

    low = values.min(axis=0)
    span = values.max(axis=0) - low
    scaled = np.divide(values - low, span, out=np.zeros_like(values), where=span > 0)
    position = int(np.argmin(np.hypot(scaled[:, 0], scaled[:, 1])))
    label = labels[position]
    return label.item() if isinstance(label, np.generic) else label


def write_sweep_plots(
    folder: Path,
    scenario_name: str,
    points: pd.DataFrame,
    design: str,
    concurrency: dict[int, pd.DataFrame] | None = None,
    lateness_metric: str = "lateness_s.p99",
    cost_metric: str = "cost_usd.per_million_messages",
) -> list[Path]:
    """Write the sweep plots of ``design`` into ``folder`` and return their paths sorted by name.

    The files are heatmap_lateness.png and heatmap_cost.png (left out when no swept parameter
    takes more than one value), frontier.png, and frontier_concurrency.png when ``concurrency``
    is given. ``concurrency`` maps a point_id to that point's concurrency step series, a frame
    with columns at_s and concurrency. Only frontier points are looked up in it.
    ``folder`` is created if missing, and existing files of those names are overwritten.

    Raises ValueError if ``points`` has no row for ``design`` (the message lists the designs
    present), or if a frame lacks a required column.
    """
    rows = _design_rows(points, design)
    lateness = _metric(lateness_metric)
    cost = _metric(cost_metric)
    _require_columns("points", rows, ("point_id", lateness.column, cost.column))
    view = _build_view(scenario_name, design, rows)

    figures: dict[str, Figure] = {}
    if view.varied:
        figures["heatmap_lateness.png"] = _draw_heatmap(view, rows, lateness, allow_log=True)
        figures["heatmap_cost.png"] = _draw_heatmap(view, rows, cost, allow_log=False)
    else:
        logger.info("design %s: no swept parameter takes more than one value, so no heatmaps", design)

    front = pareto_front(rows, cost.column, lateness.column)
    # Lateness spans decades and is drawn on a log scale, so the knee is found on that scale.
    knee = knee_point(front, cost.column, lateness.column, log_y=True)
    figures["frontier.png"] = _draw_frontier(view, rows, front, knee, cost, lateness)
    if concurrency is not None:
        figures["frontier_concurrency.png"] = _draw_frontier_concurrency(
            view, front, knee, concurrency, cost, lateness
        )

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = save_figures(folder, figures)
    logger.info(
        "wrote %d sweep plots of design %s (%d points, %d on the frontier) for scenario %r to %s",
        len(paths), design, len(rows), len(front), scenario_name, folder,
    )
    return sorted(paths)


# ---------------------------------------------------------------------------------------------
# Inputs


def _design_rows(points: pd.DataFrame, design: str) -> pd.DataFrame:
    _require_columns("points", points, ("design",))
    rows = points.loc[points["design"] == design]
    if rows.empty:
        present = sorted(map(str, points["design"].dropna().unique()))
        raise ValueError(
            f"the sweep points have no row for design {design!r}. "
            f"Designs present: {', '.join(present) or 'none'}. Plot one of those designs"
        )
    return rows


def _metric(metric: str) -> _Metric:
    """Return the mean column of a summary metric with a readable name and unit."""
    group, _, statistic = metric.partition(".")
    if group == "lateness_s":
        name, unit = (f"{statistic} lateness" if statistic else "lateness"), "s"
    elif metric == "cost_usd.per_million_messages":
        name, unit = "cost per million messages", "USD"
    elif group == "cost_usd":
        name, unit = (f"cost, {statistic}" if statistic else "cost"), "USD"
    else:
        name, unit = metric, ""
    return _Metric(column=f"{metric}.mean", name=name, unit=unit)


def _build_view(scenario_name: str, design: str, rows: pd.DataFrame) -> _SweepView:
    columns = [column for column in rows.columns if column.startswith(PARAMETER_PREFIX)]
    varied = [column for column in columns if rows[column].nunique(dropna=True) > 1]
    parameters = tuple(column.removeprefix(PARAMETER_PREFIX) for column in columns)
    return _SweepView(
        scenario_name=scenario_name,
        design=design,
        colour=_assign_colours([design])[design],
        parameters=parameters,
        varied=tuple(column.removeprefix(PARAMETER_PREFIX) for column in varied),
        short_names=_short_names(parameters),
    )


def _short_names(paths: tuple[str, ...]) -> dict[str, str]:
    """Map each dotted path to its parts after the prefix all paths share, keeping at least the last part."""
    split = [path.split(".") for path in paths]
    shared = min((len(parts) - 1 for parts in split), default=0)
    for position in range(shared):
        if len({parts[position] for parts in split}) > 1:
            shared = position
            break
    return {path: ".".join(parts[shared:]) for path, parts in zip(paths, split)}


def _sorted_unique(values: pd.Series) -> list:
    unique = list(values.dropna().unique())
    try:
        return sorted(unique)
    except TypeError:
        return sorted(unique, key=str)


def _format_parameter(value: object) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{int(value)}" if float(value).is_integer() else f"{float(value):.4g}"
    return str(value)


def _format_metric(metric: _Metric, value: float) -> str:
    """Format a cell or label value compactly: 3 significant digits, dollars for USD metrics."""
    if not math.isfinite(value):
        return "n/a"
    if metric.unit == "USD":
        return _format_usd(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _axis_label(metric: _Metric, note: str = "") -> str:
    details = ", ".join(part for part in (metric.unit, note) if part)
    return f"{metric.name} ({details})" if details else metric.name


def _describe_point(view: _SweepView, row: pd.Series, separator: str) -> str:
    """Name a point by the values of its varied parameters, or of all parameters when none varies."""
    names = view.varied or view.parameters
    if not names:
        return f"point {int(row['point_id'])}"
    return separator.join(
        f"{view.short_names[name]}={_format_parameter(row[PARAMETER_PREFIX + name])}" for name in names
    )


def _describe_metrics(row: pd.Series, cost: _Metric, lateness: _Metric, separator: str) -> str:
    parts = []
    for metric in (cost, lateness):
        value = _format_metric(metric, float(row[metric.column]))
        # Dollar values carry their unit already.
        unit = f" {metric.unit}" if metric.unit not in ("", "USD") and value != "n/a" else ""
        parts.append(f"{metric.name}: {value}{unit}")
    return separator.join(parts)


# ---------------------------------------------------------------------------------------------
# Heatmaps


def _draw_heatmap(view: _SweepView, rows: pd.DataFrame, metric: _Metric, allow_log: bool) -> Figure:
    """Draw the mean of ``metric`` over the first two varied parameters, averaging any others."""
    x_name = view.varied[0]
    y_name = view.varied[1] if len(view.varied) > 1 else None
    averaged = view.varied[2:]
    x_values = _sorted_unique(rows[PARAMETER_PREFIX + x_name])
    y_values = _sorted_unique(rows[PARAMETER_PREFIX + y_name]) if y_name else [None]
    means, counts = _cell_means(rows, metric.column, x_name, x_values, y_name, y_values)

    width, height = FIGURE_SIZE_IN
    figure = Figure(figsize=(width, height if y_name else 3.2), layout="constrained")
    axes = figure.add_subplot()
    norm, colour_values, log_scale = _colour_scale(means, allow_log)
    colour_map = matplotlib.colormaps[_COLOUR_MAP].with_extremes(bad=_MISSING_CELL_COLOUR)
    image = axes.imshow(colour_values, origin="lower", aspect="auto", interpolation="nearest",
                        cmap=colour_map, norm=norm)

    cell_count = means.size
    if cell_count <= MAX_ANNOTATED_CELLS:
        _annotate_cells(axes, means, counts, colour_values, norm, colour_map, metric)
    else:
        logger.info("heatmap of %s has %d cells, more than %d, so cells are not labelled",
                    metric.column, cell_count, MAX_ANNOTATED_CELLS)

    _set_parameter_ticks(axes.xaxis, x_values, rotate=len(x_values) > 10)
    axes.set_xlabel(x_name)
    if y_name:
        _set_parameter_ticks(axes.yaxis, y_values, rotate=False)
        axes.set_ylabel(y_name)
    else:
        axes.set_yticks([])

    # A one-row heatmap is too short for a vertical colour bar label, so its bar goes below.
    colour_bar = figure.colorbar(image, ax=axes, location="right" if y_name else "bottom")
    scale_note = "log scale, " if log_scale else ""
    colour_bar.set_label(_axis_label(metric, f"{scale_note}lower is better"))
    colour_axis = colour_bar.ax.yaxis if y_name else colour_bar.ax.xaxis
    if not np.isfinite(means).any():
        colour_bar.set_ticks([])
    elif log_scale:
        _use_plain_log_labels(colour_axis)
    elif metric.unit == "USD":
        colour_axis.set_major_formatter(_DollarFormatter())
    axes.set_title(_heatmap_title(view, metric, averaged, means, counts), fontsize=10)
    return figure


def _cell_means(
    rows: pd.DataFrame, column: str, x_name: str, x_values: list, y_name: str | None, y_values: list
) -> tuple[np.ndarray, np.ndarray]:
    """Return the mean of ``column`` and the number of points per (y, x) cell.

    A cell's mean is NaN when it has no point or when any of its points has NaN, so a missing
    value is not hidden by averaging it away.
    """
    x_index = pd.Index(x_values).get_indexer(rows[PARAMETER_PREFIX + x_name])
    if y_name:
        y_index = pd.Index(y_values).get_indexer(rows[PARAMETER_PREFIX + y_name])
    else:
        y_index = np.zeros(len(rows), dtype=np.int64)
    values = rows[column].to_numpy(dtype=float)
    # Rows whose parameter is NaN have no cell.
    placed = (x_index >= 0) & (y_index >= 0)
    x_index, y_index, values = x_index[placed], y_index[placed], values[placed]

    shape = (len(y_values), len(x_values))
    sums = np.zeros(shape)
    counts = np.zeros(shape, dtype=np.int64)
    np.add.at(sums, (y_index, x_index), values)
    np.add.at(counts, (y_index, x_index), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / counts, np.nan)
    return means, counts


def _colour_scale(means: np.ndarray, allow_log: bool) -> tuple[Normalize, np.ndarray, bool]:
    """Return the norm, the values to colour and whether the scale is logarithmic.

    A log scale cannot show values <= 0, so on a log scale they are coloured as LATENESS_FLOOR_S.
    """
    finite = means[np.isfinite(means)]
    if len(finite) == 0:
        return Normalize(0.0, 1.0), means, False
    if allow_log:
        lowest = max(float(finite.min()), LATENESS_FLOOR_S)
        highest = float(finite.max())
        if highest / lowest > LOG_COLOUR_RATIO:
            return LogNorm(lowest, highest), np.maximum(means, LATENESS_FLOOR_S), True
    low, high = float(finite.min()), float(finite.max())
    if low == high:
        # A scale of zero width would colour every cell as its low end and label no ticks.
        padding = abs(low) * 0.05 or 0.5
        low, high = low - padding, high + padding
    return Normalize(low, high), means, False


def _annotate_cells(
    axes: Axes,
    means: np.ndarray,
    counts: np.ndarray,
    colour_values: np.ndarray,
    norm: Normalize,
    colour_map,
    metric: _Metric,
) -> None:
    cell_count = means.size
    if cell_count <= 36:
        font_size = 10
    elif cell_count <= 144:
        font_size = 8
    else:
        font_size = 6
    for (y, x), mean in np.ndenumerate(means):
        if counts[y, x] == 0:
            continue
        if math.isfinite(mean):
            red, green, blue, _ = colour_map(norm(colour_values[y, x]))
            # Relative luminance (ITU-R BT.709 weights) picks the readable text colour.
            text_colour = "white" if 0.2126 * red + 0.7152 * green + 0.0722 * blue < 0.5 else "black"
        else:
            text_colour = "0.3"
        axes.text(x, y, _format_metric(metric, float(mean)), ha="center", va="center",
                  fontsize=font_size, color=text_colour)


def _set_parameter_ticks(axis, values: list, rotate: bool) -> None:
    step = math.ceil(len(values) / MAX_TICK_LABELS)
    positions = np.arange(len(values))[::step]
    axis.set_ticks(positions, [_format_parameter(values[position]) for position in positions],
                   rotation=45 if rotate else 0)


def _heatmap_title(
    view: _SweepView, metric: _Metric, averaged: tuple[str, ...], means: np.ndarray, counts: np.ndarray
) -> str:
    lines = [f"{view.scenario_name}: {view.design} design, mean {metric.name} per sweep point"]
    notes = []
    if averaged:
        notes.append(f"each cell averages over {', '.join(averaged)}")
    if (counts == 0).any():
        notes.append("grey cells have no point")
    if ((counts > 0) & ~np.isfinite(means)).any():
        notes.append(f"n/a: a point of the cell has no {metric.name} value")
    if notes:
        lines.append(" · ".join(notes))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Frontier


def _draw_frontier(
    view: _SweepView,
    rows: pd.DataFrame,
    front: pd.DataFrame,
    knee: int | None,
    cost: _Metric,
    lateness: _Metric,
) -> Figure:
    figure = Figure(figsize=FIGURE_SIZE_IN, layout="constrained")
    axes = figure.add_subplot()
    axes.set_yscale("log")
    _use_plain_log_labels(axes.yaxis)

    x = rows[cost.column].to_numpy(dtype=float)
    y = rows[lateness.column].to_numpy(dtype=float)
    has_values = np.isfinite(x) & np.isfinite(y)
    hidden = int((~has_values).sum())
    x, y = x[has_values], y[has_values]
    y_drawn = np.maximum(y, LATENESS_FLOOR_S)

    if len(x):
        axes.set_ylim(*_lateness_limits(rows.loc[has_values], lateness.column, y_drawn))
    _draw_error_bars(axes, rows.loc[has_values], x, y_drawn, cost, lateness)
    if len(x):
        hidden_note = f", {hidden:,} lacking a value not shown" if hidden else ""
        axes.scatter(x, y_drawn, s=16, color=_OTHER_POINT_COLOUR, alpha=0.7, linewidths=0, zorder=2,
                     label=f"{_count(len(x), 'sweep point')}, mean over replications{hidden_note}")

    if len(front) > 1:
        # With steps-post, each point's lateness extends right to the next point, which traces
        # the boundary of the region that the frontier dominates.
        axes.plot(front[cost.column], np.maximum(front[lateness.column], LATENESS_FLOOR_S),
                  drawstyle="steps-post", color=view.colour, linewidth=1.4, zorder=3,
                  label="Pareto frontier")
    if not front.empty:
        axes.scatter(front[cost.column], np.maximum(front[lateness.column], LATENESS_FLOOR_S),
                     s=46, color=view.colour, edgecolors="black", linewidths=0.6, zorder=4,
                     label=_count(len(front), "frontier point"))
    if knee is not None:
        _annotate_knee(axes, view, front.loc[knee], cost, lateness)

    if len(x) == 0:
        axes.set_ylim(LATENESS_FLOOR_S, 1.0)
        axes.set_xticks([])
        axes.text(0.5, 0.5, f"none of the {_count(len(rows), 'point')} has both a {cost.name} "
                  f"and a {lateness.name} value",
                  transform=axes.transAxes, ha="center", va="center", color="0.4")
    elif cost.unit == "USD":
        axes.xaxis.set_major_formatter(_DollarFormatter())
    axes.set_xlabel(_axis_label(cost))
    floor_note = ""
    if (y < LATENESS_FLOOR_S).any():
        floor_note = f", below {_format_seconds(LATENESS_FLOOR_S)} drawn at it"
    axes.set_ylabel(_axis_label(lateness, f"log scale{floor_note}"))
    axes.set_title(f"{view.scenario_name}: {view.design} design, {cost.name} against {lateness.name}")
    axes.grid(True, which="major", alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        # Below the axes, because the points can fill any corner of the plot.
        figure.legend(loc="outside lower center", ncols=2, fontsize=9)
    return figure


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"


def _lateness_limits(rows: pd.DataFrame, mean_column: str, y_drawn: np.ndarray) -> tuple[float, float]:
    """Return y limits that fit the points and their CI ends, with a margin on the log scale.

    A CI low end below LATENESS_FLOOR_S, often 0 s or less, is left out, so that its bar runs off
    the bottom edge instead of stretching the axis down to the floor.
    """
    low_column = mean_column.removesuffix(".mean") + ".ci_low"
    high_column = mean_column.removesuffix(".mean") + ".ci_high"
    values = [y_drawn]
    if low_column in rows.columns and high_column in rows.columns:
        ci_low = rows[low_column].to_numpy(dtype=float)
        values.append(ci_low[ci_low >= LATENESS_FLOOR_S])
        values.append(np.maximum(rows[high_column].to_numpy(dtype=float), LATENESS_FLOOR_S))
    finite = np.concatenate(values)
    finite = finite[np.isfinite(finite)]
    low, high = float(finite.min()), float(finite.max())
    margin = max(high / low, 10.0) ** 0.05
    return low / margin, high * margin


def _draw_error_bars(
    axes: Axes, rows: pd.DataFrame, x: np.ndarray, y_drawn: np.ndarray, cost: _Metric, lateness: _Metric
) -> None:
    """Draw the confidence intervals that are not NaN, with a legend entry."""
    bottom = axes.get_ylim()[0]
    x_errors = _interval_lengths(rows, cost.column, x, floor=None)
    # A lateness CI ending below the bottom limit is drawn down to a tenth of it, so that the bar
    # visibly leaves the axes.
    y_errors = _interval_lengths(rows, lateness.column, y_drawn, floor=bottom / 10)
    if not (x_errors.any() or y_errors.any()):
        return
    below_floor = _ci_low(rows, lateness.column) < LATENESS_FLOOR_S
    floor_note = ""
    if below_floor.any():
        floor_note = f" (bars leaving the bottom end below {_format_seconds(LATENESS_FLOOR_S)})"
    # Hundreds of bars would hide the points, so they fade as the point count grows.
    alpha = 1.0 if len(x) <= 100 else 0.5
    axes.errorbar(x, y_drawn, xerr=x_errors, yerr=y_errors, fmt="none", ecolor=_ERROR_BAR_COLOUR,
                  elinewidth=0.8, alpha=alpha, zorder=1, label=f"95% CI{floor_note}")


def _ci_low(rows: pd.DataFrame, mean_column: str) -> np.ndarray:
    column = mean_column.removesuffix(".mean") + ".ci_low"
    if column not in rows.columns:
        return np.full(len(rows), np.nan)
    return rows[column].to_numpy(dtype=float)


def _interval_lengths(
    rows: pd.DataFrame, mean_column: str, centres: np.ndarray, floor: float | None
) -> np.ndarray:
    """Return the (2, n) lengths below and above each centre of the CI, 0 where the CI is NaN or absent.

    With ``floor``, a low end below it is raised to it, because a log axis cannot show values <= 0.
    """
    high_column = mean_column.removesuffix(".mean") + ".ci_high"
    lengths = np.zeros((2, len(centres)))
    if high_column not in rows.columns:
        return lengths
    low = _ci_low(rows, mean_column)
    high = rows[high_column].to_numpy(dtype=float)
    if floor is not None:
        low = np.where(low < floor, floor, low)
    lengths[0] = np.nan_to_num(centres - low, nan=0.0)
    lengths[1] = np.nan_to_num(high - centres, nan=0.0)
    return np.clip(lengths, 0.0, None)


def _annotate_knee(axes: Axes, view: _SweepView, row: pd.Series, cost: _Metric, lateness: _Metric) -> None:
    knee_x = float(row[cost.column])
    knee_y = max(float(row[lateness.column]), LATENESS_FLOOR_S)
    axes.scatter([knee_x], [knee_y], s=160, facecolors="none", edgecolors="black", linewidths=1.4,
                 zorder=5, label="knee (nearest min cost and min lateness, both scaled to 0–1)")

    text = f"knee: {_describe_point(view, row, ', ')}\n{_describe_metrics(row, cost, lateness, ', ')}"
    axes.annotate(
        text, xy=(knee_x, knee_y),
        # Frontier points have the lowest lateness for their cost, so the lower left corner is
        # usually free of points.
        xytext=(0.02, 0.03), textcoords="axes fraction", ha="left", va="bottom", fontsize=8,
        bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "0.6", "alpha": 0.9},
        arrowprops={"arrowstyle": "-", "color": "0.3", "linewidth": 0.8}, zorder=6,
    )


# ---------------------------------------------------------------------------------------------
# Concurrency of frontier points


def _spread_along_front(count: int, knee_position: int | None, limit: int) -> list[int]:
    """Return up to ``limit`` positions spread evenly over ``count`` front points, always with the knee."""
    if count <= limit:
        return list(range(count))
    # With count > limit the rounded positions are at least one apart, so all are distinct.
    positions = [int(position) for position in np.linspace(0, count - 1, limit).round()]
    if knee_position is not None and knee_position not in positions:
        nearest = min(positions, key=lambda position: abs(position - knee_position))
        positions[positions.index(nearest)] = knee_position
        positions.sort()
    return positions


def _concurrency_steps(frame: pd.DataFrame, end_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Return step points that start at 0 at time 0 and hold the last level until ``end_s``."""
    ordered = frame.sort_values("at_s", kind="stable")
    at_s = ordered["at_s"].to_numpy(dtype=float)
    levels = ordered["concurrency"].to_numpy(dtype=float)
    last_level = levels[-1] if len(levels) else 0.0
    last_time = max(end_s, at_s[-1]) if len(at_s) else end_s
    return np.concatenate([[0.0], at_s, [last_time]]), np.concatenate([[0.0], levels, [last_level]])


def _draw_frontier_concurrency(
    view: _SweepView,
    front: pd.DataFrame,
    knee: int | None,
    concurrency: dict[int, pd.DataFrame],
    cost: _Metric,
    lateness: _Metric,
) -> Figure:
    knee_position = front.index.get_loc(knee) if knee is not None else None
    positions = _spread_along_front(len(front), knee_position, MAX_CONCURRENCY_PANELS)
    chosen = front.iloc[positions]
    series = {}
    for point_id in chosen["point_id"]:
        frame = concurrency.get(int(point_id))
        if frame is None:
            logger.warning("design %s: no concurrency series given for frontier point %d",
                           view.design, int(point_id))
            continue
        _require_columns(f"concurrency[{int(point_id)}]", frame, _CONCURRENCY_COLUMNS)
        series[int(point_id)] = frame
    end_s = max((float(frame["at_s"].max()) for frame in series.values() if not frame.empty), default=0.0)
    end_s = end_s if end_s > 0 else 1.0
    time_divisor_s, time_unit = _choose_time_unit(end_s)

    panel_count = max(len(chosen), 1)
    width, height = FIGURE_SIZE_IN
    figure = Figure(figsize=(max(width, 2.6 * panel_count), 4.2), layout="constrained")
    all_axes = figure.subplots(1, panel_count, sharex=True, sharey=True, squeeze=False)[0]

    peak = 0.0
    for axes, (label, row) in zip(all_axes, chosen.iterrows()):
        point_id = int(row["point_id"])
        frame = series.get(point_id)
        if frame is None:
            axes.text(0.5, 0.5, "no concurrency\nseries given", transform=axes.transAxes,
                      ha="center", va="center", color="0.4")
        else:
            times, levels = _concurrency_steps(frame, end_s)
            axes.plot(times / time_divisor_s, levels, drawstyle="steps-post", color=view.colour,
                      linewidth=1.0)
            peak = max(peak, float(levels.max()))
        knee_note = ", knee" if label == knee else ""
        parameters = _describe_point(view, row, "\n")
        metrics = _describe_metrics(row, cost, lateness, "\n")
        axes.set_title(f"point {point_id}{knee_note}\n{parameters}\n{metrics}", fontsize=8, loc="left")
        axes.grid(True, axis="y", alpha=0.3)

    if chosen.empty:
        all_axes[0].text(0.5, 0.5, f"the frontier is empty: no point has both a {cost.name} "
                         f"and a {lateness.name} value",
                         transform=all_axes[0].transAxes, ha="center", va="center", color="0.4")
        all_axes[0].set_xticks([])
    all_axes[0].set_ylabel("concurrent instances")
    all_axes[0].yaxis.set_major_locator(MaxNLocator(integer=True))
    all_axes[0].set_ylim(0, max(peak, 1.0) * 1.15)
    all_axes[0].set_xlim(0, end_s / time_divisor_s)
    figure.supxlabel(f"simulated time ({time_unit})", fontsize=10)
    shown_note = f", {len(chosen)} of {len(front)} spread along it" if len(chosen) < len(front) else ""
    figure.suptitle(
        f"{view.scenario_name}: {view.design} design, Lambda concurrency of frontier points{shown_note}, "
        f"cheapest first"
    )
    return figure
