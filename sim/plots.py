"""Draw the standard PNG plots of one run: lateness CDF, lateness over time, concurrency and cost.

Figures are built with matplotlib's object-oriented API (``matplotlib.figure.Figure``) and
saved by the Agg canvas, so no pyplot state, display or global backend setting is involved.
Each design keeps the same colour in every plot of a run.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.axis import Axis
from matplotlib.ticker import FuncFormatter, LogFormatter, MaxNLocator

logger = logging.getLogger(__name__)

FIGURE_SIZE_IN = (9.0, 5.0)
DPI = 120

# Log axes cannot show 0 s, so lateness below this floor is drawn at the floor.
LATENESS_FLOOR_S = 1e-3

# Approximate maximum number of points drawn per CDF line. Sorted lateness is sampled evenly by rank,
# plus a geometric set of ranks near the top so that the p99 to max tail keeps its shape.
MAX_CDF_POINTS = 2_000

# Upper bound on the number of time windows in the lateness-over-time and arrival-rate series.
MAX_TIME_WINDOWS = 300

# Window widths in seconds that read well in a title ("30 s", "5 min").
_WINDOW_CHOICES_S = (
    0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1_800, 3_600,
    7_200, 10_800, 21_600, 43_200, 86_400,
)

# Fixed colours for the two standard design names, so they match across runs.
# Other designs take the remaining tab10 colours in order of appearance.
_KNOWN_DESIGN_COLOURS = {"recursive": "tab:blue", "timer": "tab:orange"}
_SPARE_COLOURS = (
    "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:red",
)
_ARRIVAL_COLOUR = "0.55"

# Stacking order of the cost bars, bottom first: (key in summary cost_usd, legend label, colour).
# The colours are muted so that they do not read as design colours.
_COST_COMPONENTS = (
    ("lambda_compute", "Lambda compute", "#8da0cb"),
    ("lambda_requests", "Lambda requests", "#c6cfe6"),
    ("sqs", "SQS requests", "#66c2a5"),
    ("sns", "SNS requests", "#e5c494"),
    ("eventbridge", "EventBridge", "#b3b3b3"),
)

_MESSAGE_COLUMNS = ("design", "message_id", "due_at_s", "lateness_s")
_CONCURRENCY_COLUMNS = ("design", "at_s", "concurrency")


class _PlainLogFormatter(LogFormatter):
    """Tick labels for a log axis written as plain numbers (0.01, 0.5, 20) instead of 1e-02.

    LogFormatter still decides which ticks get a label, so minor ticks are labelled
    only when the axis spans few decades.
    """

    def __call__(self, x, pos=None):
        label = super().__call__(x, pos)
        return f"{x:g}" if label else ""


def _use_plain_log_labels(axis: Axis) -> None:
    axis.set_major_formatter(_PlainLogFormatter(labelOnlyBase=False))
    axis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.4)))


@dataclass(frozen=True)
class _RunContext:
    """Values shared by every plot of one run."""

    title: str
    designs: tuple[str, ...]
    colours: dict[str, str]
    design_summaries: dict[str, dict]
    end_s: float
    time_divisor_s: float
    time_unit: str
    window_s: float


def write_plots(
    folder: Path,
    summary: dict,
    messages: pd.DataFrame,
    invocations: pd.DataFrame,
    concurrency: pd.DataFrame,
) -> list[Path]:
    """Write the four PNG plots of a run into ``folder`` and return their paths sorted by name.

    The files are lateness_cdf.png, lateness_over_time.png, concurrency.png and cost.png.
    ``folder`` is created if missing, and existing files of those names are overwritten.
    Designs are taken from ``summary["designs"]`` in order, followed by any design that only
    appears in ``messages`` or ``concurrency``. ``invocations`` is accepted so that callers
    can pass the whole result set, but none of the current plots reads it.

    Raises ValueError if a frame lacks a required column or if there is no design to plot.
    """
    del invocations  # unused by the current plots, see docstring
    _require_columns("messages", messages, _MESSAGE_COLUMNS)
    _require_columns("concurrency", concurrency, _CONCURRENCY_COLUMNS)
    context = _build_context(summary, messages, concurrency)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lateness_by_design = {
        design: _delivered_lateness(messages, design) for design in context.designs
    }

    figures = {
        "lateness_cdf.png": _draw_lateness_cdf(context, lateness_by_design, messages),
        "lateness_over_time.png": _draw_lateness_over_time(context, messages),
        "concurrency.png": _draw_concurrency(context, messages, concurrency),
        "cost.png": _draw_cost(context),
    }
    paths = save_figures(folder, figures)
    logger.info("wrote %d plots for scenario %r to %s", len(paths), context.title, folder)
    return sorted(paths)


def _require_columns(frame_name: str, frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(
            f"{frame_name} frame is missing column(s) {', '.join(missing)}. "
            f"Its columns are: {', '.join(map(str, frame.columns)) or 'none'}"
        )


def _build_context(
    summary: dict, messages: pd.DataFrame, concurrency: pd.DataFrame
) -> _RunContext:
    design_summaries = dict(summary.get("designs") or {})
    designs = list(design_summaries)
    frame_designs = pd.concat([messages["design"], concurrency["design"]]).astype(str)
    extra_designs = sorted(set(frame_designs.unique()) - set(designs))
    if extra_designs:
        logger.warning(
            "designs %s appear in the frames but not in summary['designs'], "
            "so their cost bars will be empty",
            extra_designs,
        )
        designs.extend(extra_designs)
    if not designs:
        raise ValueError("nothing to plot: summary['designs'] and the frames name no design")

    scenario = str(summary.get("scenario", "unnamed scenario"))
    seed = summary.get("seed")
    title = scenario if seed is None else f"{scenario} (seed {seed})"

    end_s = _run_end_s(summary, messages, concurrency)
    time_divisor_s, time_unit = _choose_time_unit(end_s)
    return _RunContext(
        title=title,
        designs=tuple(designs),
        colours=_assign_colours(designs),
        design_summaries=design_summaries,
        end_s=end_s,
        time_divisor_s=time_divisor_s,
        time_unit=time_unit,
        window_s=_choose_window_s(end_s),
    )


def _run_end_s(summary: dict, messages: pd.DataFrame, concurrency: pd.DataFrame) -> float:
    """Return the end of the plotted time range: the run's end_at_s or the latest time in the data."""
    candidates = [summary.get("end_at_s"), summary.get("duration_s")]
    for series in (messages["due_at_s"], concurrency["at_s"]):
        if len(series):
            candidates.append(series.max())
    finite = [float(value) for value in candidates if value is not None and np.isfinite(value)]
    end_s = max(finite, default=0.0)
    return end_s if end_s > 0 else 1.0


def _assign_colours(designs: list[str]) -> dict[str, str]:
    colours = {}
    spare_count = 0
    for design in designs:
        if design in _KNOWN_DESIGN_COLOURS:
            colours[design] = _KNOWN_DESIGN_COLOURS[design]
        else:
            # Colours repeat once the spare ones run out, which beats failing on many designs.
            colours[design] = _SPARE_COLOURS[spare_count % len(_SPARE_COLOURS)]
            spare_count += 1
    return colours


def _choose_time_unit(end_s: float) -> tuple[float, str]:
    if end_s <= 600:
        return 1.0, "s"
    if end_s <= 48 * 3600:
        return 60.0, "min"
    return 3600.0, "h"


def _choose_window_s(end_s: float) -> float:
    """Return the smallest readable window width that splits the run into at most MAX_TIME_WINDOWS."""
    for width in _WINDOW_CHOICES_S:
        if end_s / width <= MAX_TIME_WINDOWS:
            return float(width)
    return float(math.ceil(end_s / MAX_TIME_WINDOWS / 86_400) * 86_400)


def _delivered_lateness(messages: pd.DataFrame, design: str) -> np.ndarray:
    """Return the sorted lateness in seconds of the design's delivered messages."""
    lateness = messages.loc[messages["design"] == design, "lateness_s"].to_numpy(dtype=float)
    lateness = lateness[np.isfinite(lateness)]
    lateness.sort()
    return lateness


def _undelivered_count(context: _RunContext, messages: pd.DataFrame, design: str) -> int:
    """Return the undelivered count from the summary, or count NaN lateness if the summary lacks it."""
    undelivered = context.design_summaries.get(design, {}).get("undelivered") or {}
    if undelivered.get("total") is not None:
        return int(undelivered["total"])
    rows = messages.loc[messages["design"] == design, "lateness_s"]
    return int(rows.isna().sum())


def _lateness_percentile(
    context: _RunContext, design: str, key: str, sorted_lateness: np.ndarray
) -> float:
    """Return a lateness percentile from the summary, so legends match the reported numbers.

    Falls back to numpy's linear-interpolation percentile of the frame when the summary
    has no value for ``key`` (p50, p99).
    """
    reported = (context.design_summaries.get(design, {}).get("lateness_s") or {}).get(key)
    if reported is not None:
        return float(reported)
    return float(np.percentile(sorted_lateness, float(key[1:])))


def sample_cdf(sorted_values: np.ndarray, max_points: int = MAX_CDF_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Sample the empirical CDF of ``sorted_values`` (ascending) at ``max_points + 2`` ranks or fewer.

    Returns ``(x, y)`` where ``y[i]`` is the fraction of values that are <= ``x[i]``. The first
    and last values are always included, so the curve spans the full range and ends at 1.
    """
    count = len(sorted_values)
    if count == 0:
        return np.empty(0), np.empty(0)
    if count <= max_points:
        ranks = np.arange(count)
    else:
        even = np.linspace(0, count - 1, max_points // 2)
        # Distances 1 .. count from the top, spaced geometrically, keep the tail detailed.
        tail = count - np.geomspace(1, count, max_points // 2)
        ranks = np.unique(np.concatenate([even, tail, [0, count - 1]]).round().astype(np.int64))
    return sorted_values[ranks], (ranks + 1) / count


def _draw_lateness_cdf(
    context: _RunContext, lateness_by_design: dict[str, np.ndarray], messages: pd.DataFrame
) -> Figure:
    figure = Figure(figsize=FIGURE_SIZE_IN, layout="constrained")
    axes = figure.add_subplot()
    axes.set_xscale("log")
    _use_plain_log_labels(axes.xaxis)

    largest = LATENESS_FLOOR_S
    for design in context.designs:
        colour = context.colours[design]
        lateness = lateness_by_design[design]
        undelivered = _undelivered_count(context, messages, design)
        undelivered_note = f", {undelivered:,} undelivered" if undelivered else ""

        if len(lateness) == 0:
            axes.plot([], [], color=colour, linestyle=":",
                      label=f"{design}: no message delivered{undelivered_note}")
            continue

        x, y = sample_cdf(np.maximum(lateness, LATENESS_FLOOR_S))
        p50 = _lateness_percentile(context, design, "p50", lateness)
        p99 = _lateness_percentile(context, design, "p99", lateness)
        label = (
            f"{design}: p50 {_format_seconds(p50)}, p99 {_format_seconds(p99)}{undelivered_note}"
        )
        axes.plot(x, y, color=colour, drawstyle="steps-post", linewidth=1.8, label=label)
        axes.plot(
            [max(p50, LATENESS_FLOOR_S), max(p99, LATENESS_FLOOR_S)], [0.5, 0.99],
            linestyle="none", marker="o", markersize=6,
            markerfacecolor="white", markeredgecolor=colour, markeredgewidth=1.5,
        )
        largest = max(largest, float(lateness[-1]))

    for level, name in ((0.5, "p50"), (0.99, "p99")):
        axes.axhline(level, color="0.6", linestyle=":", linewidth=0.8)
        axes.annotate(name, xy=(1.0, level), xycoords=("axes fraction", "data"),
                      xytext=(3, 0), textcoords="offset points", va="center",
                      fontsize=8, color="0.4")

    if all(len(lateness) == 0 for lateness in lateness_by_design.values()):
        axes.text(0.5, 0.5, "no message was delivered", transform=axes.transAxes,
                  ha="center", va="center", color="0.4")

    axes.set_xlim(LATENESS_FLOOR_S / 1.5, largest * 2)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel(
        f"lateness = first publish − due time (s, log scale; "
        f"values below {_format_seconds(LATENESS_FLOOR_S)} drawn at {_format_seconds(LATENESS_FLOOR_S)})"
    )
    axes.set_ylabel("fraction of delivered messages")
    axes.set_title(f"{context.title}: lateness CDF per design (circles mark p50 and p99)")
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(loc="lower right")
    return figure


def _draw_lateness_over_time(context: _RunContext, messages: pd.DataFrame) -> Figure:
    figure = Figure(figsize=FIGURE_SIZE_IN, layout="constrained")
    axes = figure.add_subplot()
    axes.set_yscale("log")
    _use_plain_log_labels(axes.yaxis)

    window_s = context.window_s
    window_count = max(1, math.ceil(context.end_s / window_s))
    window_centres = (np.arange(window_count) + 0.5) * window_s / context.time_divisor_s

    plotted_any = False
    for design in context.designs:
        colour = context.colours[design]
        rows = messages.loc[messages["design"] == design, ["due_at_s", "lateness_s"]]
        delivered = rows[np.isfinite(rows["lateness_s"].to_numpy(dtype=float))]
        undelivered = len(rows) - len(delivered)
        undelivered_note = f" ({undelivered:,} undelivered not shown)" if undelivered else ""
        if delivered.empty:
            axes.plot([], [], color=colour, label=f"{design}: no message delivered{undelivered_note}")
            continue

        window_index = np.clip(
            (delivered["due_at_s"].to_numpy(dtype=float) // window_s).astype(np.int64),
            0, window_count - 1,
        )
        lateness = np.maximum(delivered["lateness_s"].to_numpy(dtype=float), LATENESS_FLOOR_S)
        grouped = pd.Series(lateness).groupby(window_index)
        # Windows without a delivered message stay NaN, which breaks the line there.
        p99 = grouped.quantile(0.99).reindex(range(window_count)).to_numpy()
        p50 = grouped.quantile(0.5).reindex(range(window_count)).to_numpy()

        axes.plot(window_centres, p99, color=colour, linewidth=1.6, marker=".", markersize=3,
                  label=f"{design} p99{undelivered_note}")
        axes.plot(window_centres, p50, color=colour, linewidth=1.0, linestyle="--", alpha=0.7,
                  label=f"{design} p50")
        plotted_any = True

    if not plotted_any:
        axes.set_ylim(LATENESS_FLOOR_S, 1.0)
        axes.text(0.5, 0.5, "no message was delivered", transform=axes.transAxes,
                  ha="center", va="center", color="0.4")

    axes.set_xlim(0, context.end_s / context.time_divisor_s)
    axes.set_xlabel(f"due time ({context.time_unit} of simulated time)")
    axes.set_ylabel(f"lateness of delivered messages (s, log scale, floor {_format_seconds(LATENESS_FLOOR_S)})")
    axes.set_title(
        f"{context.title}: lateness per {_format_duration(window_s)} window of due time"
    )
    axes.grid(True, which="major", alpha=0.3)
    # Below the axes, because the lines can fill any corner of the plot. Entries fill
    # column by column, so each design gets one column.
    figure.legend(loc="outside lower center", ncols=len(context.designs), fontsize=9)
    return figure


def _arrival_rate(context: _RunContext, messages: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Return window edges (in the plot's time unit) and the messages falling due per second in each window.

    All designs of a run share the same arrivals, so each message_id is counted once.
    """
    window_count = max(1, math.ceil(context.end_s / context.window_s))
    edges_s = np.arange(window_count + 1) * context.window_s
    due_at_s = messages.drop_duplicates("message_id")["due_at_s"].to_numpy(dtype=float)
    due_at_s = due_at_s[np.isfinite(due_at_s)]
    counts, _ = np.histogram(due_at_s, bins=edges_s)
    return edges_s / context.time_divisor_s, counts / context.window_s


def _concurrency_steps(
    concurrency: pd.DataFrame, design: str, end_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return step points in seconds, starting at 0 at time 0 and holding the last value until ``end_s``."""
    rows = concurrency.loc[concurrency["design"] == design, ["at_s", "concurrency"]]
    # A stable sort keeps the row order of simultaneous changes, so the last one wins.
    rows = rows.sort_values("at_s", kind="stable")
    at_s = rows["at_s"].to_numpy(dtype=float)
    values = rows["concurrency"].to_numpy(dtype=float)
    last_value = values[-1] if len(values) else 0.0
    last_time = max(end_s, at_s[-1]) if len(at_s) else end_s
    times = np.concatenate([[0.0], at_s, [last_time]])
    levels = np.concatenate([[0.0], values, [last_value]])
    return times, levels


def _draw_concurrency(
    context: _RunContext, messages: pd.DataFrame, concurrency: pd.DataFrame
) -> Figure:
    design_count = len(context.designs)
    width, height = FIGURE_SIZE_IN
    figure = Figure(figsize=(width, max(height, 2.5 * design_count)), layout="constrained")
    all_axes = figure.subplots(design_count, 1, sharex=True, sharey=True, squeeze=False)[:, 0]

    edges, rate = _arrival_rate(context, messages)
    steps = {
        design: _concurrency_steps(concurrency, design, context.end_s)
        for design in context.designs
    }
    overall_peak = max(float(levels.max()) for _, levels in steps.values())

    first_twin = None
    legend_handles = []
    arrival_handle = None
    for axes, design in zip(all_axes, context.designs):
        colour = context.colours[design]
        times, levels = steps[design]

        twin = axes.twinx()
        if first_twin is None:
            first_twin = twin
        else:
            twin.sharey(first_twin)
        twin.stairs(rate, edges, color=_ARRIVAL_COLOUR, alpha=0.6, fill=True, linewidth=0,
                    label=f"messages due per second ({_format_duration(context.window_s)} bins)")
        twin.set_ylabel("messages due / s", color="0.35")
        twin.tick_params(axis="y", colors="0.35")
        twin.set_ylim(0, max(float(rate.max()), 1e-9) * 1.15)
        # Draw the concurrency line above the twin axes' shaded arrival rate.
        axes.set_zorder(twin.get_zorder() + 1)
        axes.patch.set_visible(False)

        axes.plot(times / context.time_divisor_s, levels, drawstyle="steps-post", color=colour,
                  linewidth=1.4, label=f"{design} concurrency")
        axes.set_ylabel("concurrent instances")
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylim(0, max(overall_peak, 1.0) * 1.15)
        axes.grid(True, axis="y", alpha=0.3)
        axes.set_title(_concurrency_title(context, design, levels), fontsize=10, loc="left")
        legend_handles.extend(axes.get_legend_handles_labels()[0])
        arrival_handle = twin.get_legend_handles_labels()[0][0]

    all_axes[-1].set_xlim(0, context.end_s / context.time_divisor_s)
    all_axes[-1].set_xlabel(f"simulated time ({context.time_unit})")
    figure.suptitle(f"{context.title}: Lambda concurrency and arrival rate per design")
    # One legend below the subplots, because a legend inside would hide concurrency peaks.
    figure.legend(handles=[*legend_handles, arrival_handle], loc="outside lower center",
                  ncols=len(legend_handles) + 1, fontsize=9)
    return figure


def _concurrency_title(context: _RunContext, design: str, levels: np.ndarray) -> str:
    """Return a subplot title with the peak of the drawn steps and the summary's mean concurrency.

    Without concurrency rows for the design, the title shows the summary's peak and notes
    that there was nothing to draw.
    """
    reported = context.design_summaries.get(design, {}).get("concurrency") or {}
    reported_peak = reported.get("peak")
    # _concurrency_steps adds one point at each end, so real rows make it longer than 2.
    has_rows = len(levels) > 2

    if has_rows:
        peak = float(levels.max())
        if reported_peak is not None and float(reported_peak) != peak:
            logger.warning(
                "design %s: the concurrency frame peaks at %g but summary concurrency.peak is %g. "
                "The plot title uses the frame's value",
                design, peak, reported_peak,
            )
        title = f"{design}: peak concurrency {peak:g}"
    elif reported_peak is not None:
        title = f"{design}: no concurrency rows to draw, summary peak {float(reported_peak):g}"
    else:
        title = f"{design}: no concurrency rows to draw"

    if reported.get("mean") is not None:
        title += f", mean {float(reported['mean']):.2f}"
    return title


def _draw_cost(context: _RunContext) -> Figure:
    figure = Figure(figsize=FIGURE_SIZE_IN, layout="constrained")
    axes = figure.add_subplot()

    positions = np.arange(len(context.designs))
    costs = [context.design_summaries.get(design, {}).get("cost_usd") or {} for design in context.designs]
    bottoms = np.zeros(len(context.designs))
    for key, label, colour in _COST_COMPONENTS:
        heights = np.array([float(cost.get(key) or 0.0) for cost in costs])
        axes.bar(positions, heights, width=0.5, bottom=bottoms, color=colour, label=label,
                 edgecolor="white", linewidth=0.5)
        bottoms += heights

    totals = np.array([_cost_total(cost, bottom) for cost, bottom in zip(costs, bottoms)])
    top = float(max(totals.max(initial=0.0), bottoms.max(initial=0.0)))
    for position, design, total, cost in zip(positions, context.designs, totals, costs):
        design_summary = context.design_summaries.get(design, {})
        text = _cost_annotation(total, cost, design_summary.get("messages"))
        axes.annotate(text, xy=(position, max(total, 0.0)), xytext=(0, 4),
                      textcoords="offset points", ha="center", va="bottom", fontsize=9)

    axes.set_xticks(positions, list(context.designs))
    for tick_label, design in zip(axes.get_xticklabels(), context.designs):
        tick_label.set_color(context.colours[design])
        tick_label.set_fontweight("bold")
    axes.set_xlim(-0.75, len(context.designs) - 0.25)
    axes.set_ylim(0, top * 1.35 if top > 0 else 1.0)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: _format_usd(value, keep_trailing_zeros=False)))
    axes.set_xlabel("design")
    axes.set_ylabel("cost of the run (USD)")
    axes.set_title(f"{context.title}: cost per design by component")
    axes.grid(True, axis="y", alpha=0.3)
    # Reverse so the legend lists components top to bottom, as they are stacked.
    handles, labels = axes.get_legend_handles_labels()
    figure.legend(handles[::-1], labels[::-1], loc="outside right upper", title="component")
    return figure


def _cost_total(cost: dict, sum_of_components: float) -> float:
    total = cost.get("total")
    return float(total) if total is not None else float(sum_of_components)


def _cost_annotation(total: float, cost: dict, message_count: int | None) -> str:
    per_million = cost.get("per_million_messages")
    if per_million is None and message_count:
        per_million = total / message_count * 1e6
    lines = [f"{_format_usd(total)} total"]
    if per_million is not None:
        lines.append(f"{_format_usd(float(per_million))} per million messages")
    if message_count is not None:
        lines.append(f"({int(message_count):,} messages)")
    return "\n".join(lines)


def _format_usd(value: float, keep_trailing_zeros: bool = True) -> str:
    """Format dollars with 3 significant digits below $1, without scientific notation.

    Axis ticks pass ``keep_trailing_zeros=False`` so that $0.0005 is not shown as $0.000500.
    """
    if value == 0:
        return "$0"
    if abs(value) >= 100:
        return f"${value:,.0f}"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    return "$" + np.format_float_positional(value, precision=3, unique=False, fractional=False,
                                            trim="k" if keep_trailing_zeros else "-")


def _format_seconds(value: float) -> str:
    if value < 0.1:
        return f"{value * 1000:.3g} ms"
    if value < 1000:
        return f"{value:.3g} s"
    return f"{value:,.0f} s"


def _format_duration(seconds: float) -> str:
    if seconds < 60 or seconds % 60:
        return f"{seconds:g} s"
    if seconds < 3600 or seconds % 3600:
        return f"{seconds / 60:g} min"
    return f"{seconds / 3600:g} h"


def save_figures(folder: Path, figures: dict[str, Figure]) -> list[Path]:
    """Save each figure as ``folder/<name>`` and release it; return the paths in the given order."""
    paths = []
    for name, figure in figures.items():
        path = folder / name
        figure.savefig(path, dpi=DPI)
        # Figures made without pyplot are not tracked by any manager, so clearing them and
        # dropping the reference is all the closing they need.
        figure.clear()
        paths.append(path)
        logger.debug("wrote %s", path)
    return paths
