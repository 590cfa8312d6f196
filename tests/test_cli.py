"""The drainsim command line, run as a real process: outputs, exit statuses and error messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

SMALL = """
name = "small"
seed = 11
duration_s = 120
drain_s = 60

[workload]
kind = "bursty"
base_rate_per_s = 2
herd_size = 40
herd_period_s = 30
delay_s = { low = 0, high = 60 }

[designs.recursive]
kind = "recursive"
timeout_s = 60
wait_s = 5

[designs.timer]
kind = "timer"
period_s = 60
baseline_s = 30
timeout_s = 90
"""

SUMMARY_DESIGN_KEYS = {
    "messages",
    "delivered",
    "duplicates",
    "undelivered",
    "lateness_s",
    "invocations",
    "cold_starts",
    "timeouts",
    "concurrency",
    "sqs_requests",
    "sns_requests",
    "billed_gb_s",
    "cost_usd",
}


def drainsim(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sim", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        timeout=300,
    )


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL, encoding="utf-8")
    return path


def only_run_folder(root: Path, scenario: str = "small") -> Path:
    folders = [p for p in (root / scenario).iterdir()]
    assert len(folders) == 1, folders
    return folders[0]


def test_run_writes_summary_tables_and_plots(scenario_file, tmp_path):
    out = tmp_path / "out"

    result = drainsim("run", str(scenario_file), "--out", str(out), "--run-id", "first")

    assert result.returncode == 0, result.stderr
    folder = out / "small" / "first"
    names = sorted(path.name for path in folder.iterdir())
    assert names == [
        "concurrency.parquet",
        "concurrency.png",
        "cost.png",
        "invocations.parquet",
        "lateness_cdf.png",
        "lateness_over_time.png",
        "messages.parquet",
        "run.json",
        "summary.json",
    ]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["engine"] == "sim"
    assert summary["seed"] == 11
    assert set(summary["designs"]) == {"recursive", "timer"}
    assert SUMMARY_DESIGN_KEYS <= set(summary["designs"]["timer"])
    assert "lateness p99 (s)" in result.stdout
    assert f"results: {folder}" in result.stdout


def test_run_tables_have_documented_columns(scenario_file, tmp_path):
    drainsim("run", str(scenario_file), "--out", str(tmp_path), "--no-plots")
    folder = only_run_folder(tmp_path)

    messages = pd.read_parquet(folder / "messages.parquet")
    invocations = pd.read_parquet(folder / "invocations.parquet")
    concurrency = pd.read_parquet(folder / "concurrency.parquet")

    assert list(messages.columns) == [
        "design", "message_id", "send_at_s", "delay_s", "due_at_s", "first_receive_at_s",
        "first_publish_at_s", "lateness_s", "publish_count", "receive_count", "final_state",
    ]
    assert list(invocations.columns) == [
        "design", "invocation_id", "trigger", "chain_id", "chain_depth", "attempt", "start_at_s",
        "end_at_s", "cold", "init_ms", "end_reason", "billed_ms", "messages_received", "messages_published",
    ]
    assert list(concurrency.columns) == ["design", "at_s", "concurrency"]
    summary = json.loads((folder / "summary.json").read_text())
    assert len(messages) == 2 * summary["messages"]


def test_same_seed_gives_identical_summary(scenario_file, tmp_path):
    drainsim("run", str(scenario_file), "--out", str(tmp_path / "a"), "--no-plots")
    drainsim("run", str(scenario_file), "--out", str(tmp_path / "b"), "--no-plots")

    first = (only_run_folder(tmp_path / "a") / "summary.json").read_bytes()
    second = (only_run_folder(tmp_path / "b") / "summary.json").read_bytes()

    assert first == second


def test_other_seed_changes_summary(scenario_file, tmp_path):
    drainsim("run", str(scenario_file), "--out", str(tmp_path / "a"), "--no-plots")
    drainsim("run", str(scenario_file), "--out", str(tmp_path / "b"), "--no-plots", "--seed", "12")

    first = json.loads((only_run_folder(tmp_path / "a") / "summary.json").read_text())
    second = json.loads((only_run_folder(tmp_path / "b") / "summary.json").read_text())

    assert second["seed"] == 12
    assert first["designs"] != second["designs"]


def test_design_option_selects_one(scenario_file, tmp_path):
    result = drainsim("run", str(scenario_file), "--design", "timer", "--out", str(tmp_path), "--no-plots")

    assert result.returncode == 0, result.stderr
    summary = json.loads((only_run_folder(tmp_path) / "summary.json").read_text())
    assert list(summary["designs"]) == ["timer"]


def test_single_design_matches_compare(scenario_file, tmp_path):
    drainsim("run", str(scenario_file), "--design", "timer", "--out", str(tmp_path / "one"), "--no-plots")
    drainsim("compare", str(scenario_file), "--out", str(tmp_path / "all"), "--no-plots")

    one = json.loads((only_run_folder(tmp_path / "one") / "summary.json").read_text())
    both = json.loads((only_run_folder(tmp_path / "all") / "summary.json").read_text())

    # Streams are keyed by component, so a design gets the same numbers alone or in a comparison.
    assert one["designs"]["timer"] == both["designs"]["timer"]


def test_duration_option_overrides(scenario_file, tmp_path):
    drainsim("run", str(scenario_file), "--duration", "30", "--out", str(tmp_path), "--no-plots")

    summary = json.loads((only_run_folder(tmp_path) / "summary.json").read_text())

    assert summary["duration_s"] == 30


def test_compare_prints_table_per_scenario(scenario_file, tmp_path):
    other = tmp_path / "other.toml"
    other.write_text(SMALL.replace('name = "small"', 'name = "other"'), encoding="utf-8")

    result = drainsim("compare", str(scenario_file), str(other), "--out", str(tmp_path / "out"), "--no-plots")

    assert result.returncode == 0, result.stderr
    assert result.stdout.count("scenario small") == 1
    assert result.stdout.count("scenario other") == 1
    assert (tmp_path / "out" / "small").is_dir()
    assert (tmp_path / "out" / "other").is_dir()


def test_plot_redraws_from_saved_results(scenario_file, tmp_path):
    drainsim("run", str(scenario_file), "--out", str(tmp_path), "--no-plots")
    folder = only_run_folder(tmp_path)

    result = drainsim("plot", str(folder))

    assert result.returncode == 0, result.stderr
    assert (folder / "lateness_cdf.png").stat().st_size > 1000
    assert (folder / "cost.png").is_file()


# ---------------------------------------------------------------------------------------------
# User mistakes: exit status 2, one clear message, no traceback, nothing written


def assert_user_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


def test_misspelled_key_exits_2_naming_key(scenario_file, tmp_path):
    scenario_file.write_text(SMALL.replace("wait_s = 5", "wiat_s = 5"), encoding="utf-8")
    out = tmp_path / "out"

    result = drainsim("run", str(scenario_file), "--out", str(out))

    assert_user_error(result, "small.toml", "designs.recursive.wiat_s", "did you mean 'wait_s'")
    assert not out.exists()


def test_bad_seed_exits_2(scenario_file, tmp_path):
    result = drainsim("run", str(scenario_file), "--seed", "abc", "--out", str(tmp_path / "out"))

    assert_user_error(result, "invalid seed 'abc'")
    assert not (tmp_path / "out").exists()


def test_unknown_design_exits_2(scenario_file, tmp_path):
    result = drainsim("run", str(scenario_file), "--design", "cron", "--out", str(tmp_path / "out"))

    assert_user_error(result, "unknown design 'cron'", "recursive, timer")
    assert not (tmp_path / "out" / "small").exists()


def test_output_path_that_is_a_file_exits_2(scenario_file, tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("not a folder")

    result = drainsim("run", str(scenario_file), "--out", str(target))

    assert_user_error(result, "output path is a file")


def test_missing_scenario_exits_2(tmp_path):
    result = drainsim("run", str(tmp_path / "absent.toml"), "--out", str(tmp_path / "out"))

    assert_user_error(result, "absent.toml", "not found")


def test_compare_checks_every_file_before_running(scenario_file, tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text(SMALL.replace('name = "small"', 'name = "broken"').replace("seed = 11", "seed = -3"))
    out = tmp_path / "out"

    result = drainsim("compare", str(scenario_file), str(broken), "--out", str(out))

    assert_user_error(result, "broken.toml", "seed")
    assert not out.exists()


def test_plot_of_foreign_folder_exits_2(tmp_path):
    (tmp_path / "summary.json").write_text("{not json")

    result = drainsim("plot", str(tmp_path))

    assert_user_error(result, "summary.json", "not valid JSON")


def test_plot_of_incomplete_folder_exits_2(scenario_file, tmp_path):
    drainsim("run", str(scenario_file), "--out", str(tmp_path), "--no-plots")
    folder = only_run_folder(tmp_path)
    (folder / "invocations.parquet").unlink()

    result = drainsim("plot", str(folder))

    assert_user_error(result, "invocations.parquet is missing")


def test_help_states_units():
    result = drainsim("run", "--help")

    assert result.returncode == 0
    assert "seconds" in result.stdout
    assert "--seed N" in result.stdout


def test_run_id_with_separator_exits_2(scenario_file, tmp_path):
    result = drainsim("run", str(scenario_file), "--run-id", "../escaped", "--out", str(tmp_path / "out"))

    assert_user_error(result, "invalid run id '../escaped'")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "escaped").exists()


def test_compare_checks_traces_before_running(scenario_file, tmp_path):
    trace = tmp_path / "unsorted.csv"
    trace.write_text("due_at_s\n5\n3\n")
    traced = tmp_path / "traced.toml"
    traced.write_text(
        SMALL.replace('name = "small"', 'name = "traced"').replace(
            'kind = "bursty"\nbase_rate_per_s = 2\nherd_size = 40\nherd_period_s = 30\ndelay_s = { low = 0, high = 60 }',
            'kind = "trace"\npath = "unsorted.csv"',
        )
    )
    out = tmp_path / "out"

    result = drainsim("compare", str(scenario_file), str(traced), "--out", str(out), "--no-plots")

    assert_user_error(result, "unsorted.csv", "sort")
    assert not (out / "small").exists()


def test_tune_bad_constraint_exits_2(tmp_path):
    scenario = Path(__file__).resolve().parent.parent / "scenarios" / "tune-timer.toml"
    result = drainsim("tune", str(scenario), "--minimize", "cost_usd.total", "--subject-to", "lateness_s.p99=2", "--out", str(tmp_path / "t"))

    assert_user_error(result, "lateness_s.p99=2")
    assert not (tmp_path / "t").exists()


def test_sweep_without_section_exits_2(scenario_file, tmp_path):
    result = drainsim("sweep", str(scenario_file), "--out", str(tmp_path / "s"))

    assert_user_error(result, "no [sweep] section")
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("signal_name, status", [("SIGINT", 130), ("SIGTERM", 143)])
def test_interrupted_run_leaves_no_result(tmp_path, signal_name, status):
    import signal
    import time

    scenario = Path(__file__).resolve().parent.parent / "scenarios" / "bursty.toml"
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "sim", "run", str(scenario), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Let the run get past its imports and into the simulation before stopping it.
    time.sleep(4)
    process.send_signal(getattr(signal, signal_name))
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == status
    assert "no partial results were kept" in stderr
    assert "Traceback" not in stderr
    assert list(out.rglob("summary.json")) == []
    assert list(out.rglob(".incomplete-*")) == []
