"""Tests for sim.plots: every plot file is written as a readable PNG, including for edge-case runs."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sim.plots import DPI, FIGURE_SIZE_IN, sample_cdf, write_plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOT_NAMES = ["concurrency.png", "cost.png", "lateness_cdf.png", "lateness_over_time.png"]
EXPECTED_SHAPE = (round(FIGURE_SIZE_IN[1] * DPI), round(FIGURE_SIZE_IN[0] * DPI), 4)


def make_design_summary(kind: str, messages: int, delivered: int, peak: int) -> dict:
    undelivered = messages - delivered
    eventbridge = 0.00006 if kind == "timer" else 0.0
    total = 0.0017 + 0.000002 + 0.0008 + 0.0002 + eventbridge
    return {
        "kind": kind,
        "messages": messages,
        "delivered": delivered,
        "duplicates": 0,
        "undelivered": {"total": undelivered, "queued": undelivered, "in_flight": 0, "dlq": 0, "expired": 0},
        "lateness_s": {"p50": None, "p90": None, "p99": None, "p999": None, "max": None, "mean": None},
        "invocations": {"total": 10, "start": 1, "timer": 0, "self": 9, "retry": 0, "watchdog": 0},
        "throttles": 0,
        "dropped_events": 0,
        "cold_starts": 1,
        "timeouts": 0,
        "errors": 0,
        "concurrency": {"peak": peak, "mean": peak / 2},
        "lambda_requests": 10,
        "billed_gb_s": 100.0,
        "cost_usd": {
            "lambda_compute": 0.0017,
            "lambda_requests": 0.000002,
            "sqs": 0.0008,
            "sns": 0.0002,
            "eventbridge": eventbridge,
            "total": total,
            "per_million_messages": total / messages * 1e6 if messages else None,
        },
    }


def make_run(
    designs: tuple[str, ...] = ("recursive", "timer"),
    message_count: int = 2_000,
    duration_s: float = 3_600.0,
    undelivered_fraction: float = 0.0,
    seed: int = 1,
) -> tuple[dict, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Build a synthetic run: bursty arrivals shared by all designs, lateness and concurrency per design.

    The recursive design has mostly sub-second lateness with rare long tails and concurrency 0 or 1.
    The timer design waits up to a 60 s period and runs overlapping instances.
    """
    rng = np.random.default_rng(seed)
    # Bursty arrivals: half spread evenly over the run, half in a normal-shaped burst at its middle.
    send_at_s = np.sort(np.concatenate([
        rng.uniform(0, duration_s, message_count // 2),
        rng.normal(duration_s / 2, duration_s / 12, message_count - message_count // 2).clip(0, duration_s),
    ]))
    delay_s = rng.integers(0, 901, message_count).astype(np.int32)
    due_at_s = send_at_s + delay_s
    end_at_s = duration_s + 1_800.0

    message_frames, concurrency_frames, summaries = [], [], {}
    for design in designs:
        if design == "timer":
            lateness_s = rng.uniform(0, 60, message_count) + rng.exponential(0.05, message_count)
        else:
            lateness_s = rng.exponential(0.08, message_count)
            tail = rng.random(message_count) < 0.01
            lateness_s[tail] += rng.exponential(20, tail.sum())
            lateness_s[rng.random(message_count) < 0.2] = 0.0
        undelivered = rng.random(message_count) < undelivered_fraction
        lateness_s[undelivered] = np.nan
        publish_at_s = due_at_s + lateness_s
        message_frames.append(pd.DataFrame({
            "design": design,
            "message_id": np.arange(message_count, dtype=np.int64),
            "send_at_s": send_at_s,
            "delay_s": delay_s,
            "due_at_s": due_at_s,
            "first_receive_at_s": publish_at_s - 0.01,
            "first_publish_at_s": publish_at_s,
            "lateness_s": lateness_s,
            "publish_count": (~undelivered).astype(np.int32),
            "receive_count": np.ones(message_count, dtype=np.int32),
            "final_state": np.where(undelivered, "queued", "delivered"),
        }))

        if design == "timer":
            starts = np.arange(0, end_at_s, 60.0)
            ends = starts + rng.uniform(5, 150, len(starts))
            at_s = np.concatenate([starts, ends])
            change = np.concatenate([np.ones(len(starts)), -np.ones(len(ends))])
            order = np.argsort(at_s, kind="stable")
            at_s, level = at_s[order], np.cumsum(change[order]).astype(int)
        else:
            at_s = np.array([0.0, end_at_s - 100.0])
            level = np.array([1, 0])
        concurrency_frames.append(pd.DataFrame({"design": design, "at_s": at_s, "concurrency": level}))
        delivered = int((~undelivered).sum())
        summaries[design] = make_design_summary(design, message_count, delivered, int(level.max(initial=0)))

    summary = {
        "scenario": "bursty",
        "description": "synthetic run for plot tests",
        "seed": seed,
        "version": "0.1.0",
        "engine": "sim",
        "duration_s": duration_s,
        "end_at_s": end_at_s,
        "designs": summaries,
    }
    invocations = pd.DataFrame({"design": list(designs), "invocation_id": range(len(designs))})
    return summary, pd.concat(message_frames, ignore_index=True), invocations, pd.concat(concurrency_frames, ignore_index=True)


def assert_valid_pngs(paths: list[Path], folder: Path) -> None:
    assert [path.name for path in paths] == PLOT_NAMES
    for path in paths:
        assert path.parent == folder
        data = path.read_bytes()
        assert data[:8] == PNG_SIGNATURE, path.name
        assert len(data) > 10_000, f"{path.name} is only {len(data)} bytes"
        image = matplotlib.image.imread(path)
        assert image.ndim == 3, path.name
        assert image.shape[2] == 4, path.name
        assert image.shape[0] >= EXPECTED_SHAPE[0] - 1, path.name
        assert image.shape[1] == pytest.approx(EXPECTED_SHAPE[1], abs=1), path.name
        # A blank canvas has one colour, and a drawn plot has many.
        rgb = (image[..., :3] * 255).astype(np.uint32)
        packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        assert len(np.unique(packed)) > 10, path.name


@pytest.fixture(scope="module")
def standard_plots(tmp_path_factory) -> tuple[Path, list[Path]]:
    """Write the plots of a default two-design run once for the tests that only inspect them."""
    folder = tmp_path_factory.mktemp("standard")
    return folder, write_plots(folder, *make_run())


def test_write_plots_two_designs(standard_plots):
    folder, paths = standard_plots

    assert_valid_pngs(paths, folder)


def test_write_plots_image_size(standard_plots):
    _, paths = standard_plots

    for path in paths:
        assert matplotlib.image.imread(path).shape == EXPECTED_SHAPE, path.name


def test_write_plots_leaves_no_pyplot_figures(standard_plots):
    import matplotlib.pyplot as plt

    assert standard_plots[1]
    assert plt.get_fignums() == []


def test_write_plots_creates_folder(tmp_path):
    folder = tmp_path / "run" / "plots"

    paths = write_plots(folder, *make_run(message_count=200))

    assert folder.is_dir()
    assert_valid_pngs(paths, folder)


def test_write_plots_single_design(tmp_path):
    paths = write_plots(tmp_path, *make_run(designs=("timer",)))

    assert_valid_pngs(paths, tmp_path)


def test_write_plots_design_missing_from_summary(tmp_path, caplog):
    summary, messages, invocations, concurrency = make_run()
    del summary["designs"]["timer"]

    with caplog.at_level(logging.WARNING, logger="sim.plots"):
        paths = write_plots(tmp_path, summary, messages, invocations, concurrency)

    assert_valid_pngs(paths, tmp_path)
    assert "['timer'] appear in the frames but not in summary['designs']" in caplog.text


def test_write_plots_peak_mismatch_warns(tmp_path, caplog):
    summary, messages, invocations, concurrency = make_run(message_count=200)
    summary["designs"]["timer"]["concurrency"]["peak"] = 99

    with caplog.at_level(logging.WARNING, logger="sim.plots"):
        write_plots(tmp_path, summary, messages, invocations, concurrency)

    assert "design timer: the concurrency frame peaks at" in caplog.text
    assert "summary concurrency.peak is 99" in caplog.text


def test_write_plots_unknown_design_names(tmp_path):
    paths = write_plots(tmp_path, *make_run(designs=("recursive", "timer", "timer_fast")))

    assert [path.name for path in paths] == PLOT_NAMES
    assert all(path.stat().st_size > 10_000 for path in paths)


def test_write_plots_nothing_delivered(tmp_path):
    summary, messages, invocations, concurrency = make_run(undelivered_fraction=1.0)

    paths = write_plots(tmp_path, summary, messages, invocations, concurrency)

    assert messages["lateness_s"].isna().all()
    assert_valid_pngs(paths, tmp_path)


def test_write_plots_one_design_undelivered(tmp_path):
    summary, messages, invocations, concurrency = make_run()
    timer_rows = messages["design"] == "timer"
    messages.loc[timer_rows, "lateness_s"] = np.nan
    summary["designs"]["timer"]["undelivered"]["total"] = int(timer_rows.sum())

    paths = write_plots(tmp_path, summary, messages, invocations, concurrency)

    assert_valid_pngs(paths, tmp_path)


def test_write_plots_some_undelivered(tmp_path):
    paths = write_plots(tmp_path, *make_run(undelivered_fraction=0.05))

    assert_valid_pngs(paths, tmp_path)


def test_write_plots_empty_concurrency_one_design(tmp_path):
    summary, messages, invocations, concurrency = make_run()
    concurrency = concurrency[concurrency["design"] != "timer"]

    paths = write_plots(tmp_path, summary, messages, invocations, concurrency)

    assert_valid_pngs(paths, tmp_path)


def test_write_plots_empty_concurrency_frame(tmp_path):
    summary, messages, invocations, concurrency = make_run()
    empty = concurrency.iloc[0:0]

    paths = write_plots(tmp_path, summary, messages, invocations, empty)

    assert_valid_pngs(paths, tmp_path)


def test_write_plots_null_summary_values(tmp_path):
    summary, messages, invocations, concurrency = make_run()
    for design_summary in summary["designs"].values():
        design_summary["concurrency"] = {"peak": None, "mean": None}
        design_summary["cost_usd"]["per_million_messages"] = None
        design_summary["cost_usd"]["total"] = None

    paths = write_plots(tmp_path, summary, messages, invocations, concurrency)

    assert_valid_pngs(paths, tmp_path)


def test_write_plots_zero_lateness(tmp_path):
    summary, messages, invocations, concurrency = make_run()
    messages["lateness_s"] = 0.0

    paths = write_plots(tmp_path, summary, messages, invocations, concurrency)

    assert_valid_pngs(paths, tmp_path)


def test_write_plots_short_run(tmp_path):
    paths = write_plots(tmp_path, *make_run(message_count=50, duration_s=60.0))

    assert_valid_pngs(paths, tmp_path)


def test_write_plots_no_messages(tmp_path):
    summary, messages, invocations, concurrency = make_run()
    messages = messages.iloc[0:0]

    paths = write_plots(tmp_path, summary, messages, invocations, concurrency)

    assert_valid_pngs(paths, tmp_path)


def test_write_plots_overwrites_files(tmp_path):
    run = make_run()
    first = write_plots(tmp_path, *run)

    second = write_plots(tmp_path, *run)

    assert first == second
    assert sorted(path.name for path in tmp_path.iterdir()) == PLOT_NAMES


def test_write_plots_missing_column(tmp_path):
    summary, messages, invocations, concurrency = make_run()
    messages = messages.drop(columns=["lateness_s"])

    with pytest.raises(ValueError, match="messages frame is missing column.*lateness_s"):
        write_plots(tmp_path, summary, messages, invocations, concurrency)


def test_write_plots_no_designs(tmp_path):
    summary, messages, invocations, concurrency = make_run()
    summary["designs"] = {}

    with pytest.raises(ValueError, match="no design"):
        write_plots(tmp_path, summary, messages.iloc[0:0], invocations, concurrency.iloc[0:0])


def test_write_plots_large_frames(tmp_path):
    summary, messages, invocations, concurrency = make_run(message_count=400_000)

    started = time.perf_counter()
    paths = write_plots(tmp_path, summary, messages, invocations, concurrency)
    elapsed_s = time.perf_counter() - started

    assert_valid_pngs(paths, tmp_path)
    # write_plots took about 2.2 s for this run on a 2-core AMD EPYC VM. The bound is loose and
    # catches only a blow-up, such as drawing every one of the 800,000 lateness points.
    assert elapsed_s < 20, f"write_plots took {elapsed_s:.1f} s for 2 x 400,000 messages"


def test_sample_cdf_small_keeps_all():
    values = np.array([0.0, 0.5, 0.5, 2.0])

    x, y = sample_cdf(values)

    np.testing.assert_array_equal(x, values)
    np.testing.assert_allclose(y, [0.25, 0.5, 0.75, 1.0])


def test_sample_cdf_empty():
    x, y = sample_cdf(np.empty(0))

    assert len(x) == 0
    assert len(y) == 0


@settings(max_examples=50, deadline=None)
@given(
    values=arrays(np.float64, st.integers(1, 20_000), elements=st.floats(0, 1e4)),
    max_points=st.integers(4, 3_000),
)
def test_sample_cdf_properties(values, max_points):
    values = np.sort(values)

    x, y = sample_cdf(values, max_points)

    assert len(x) == len(y)
    assert len(x) <= max_points + 2
    assert x[0] == values[0]
    assert x[-1] == values[-1]
    assert y[-1] == 1.0
    assert np.all(np.diff(x) >= 0)
    assert np.all(np.diff(y) > 0)
    assert np.all((y > 0) & (y <= 1))
    # Each sampled y is the exact empirical CDF at a rank, so at least that share of values is <= x.
    assert np.all(np.searchsorted(values, x, side="right") >= np.round(y * len(values)))
