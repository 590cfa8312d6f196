"""Scenario loading and validation: every message names the file, the key, the value and the range."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.errors import ScenarioError
from sim.scenario import BaselineClock, PublishApi, RecursiveDesign, TimerDesign, load_scenario

REPOSITORY = Path(__file__).resolve().parent.parent
MINIMAL = """
name = "tiny"
seed = 7
duration_s = 60

[workload]
kind = "flat"
rate_per_s = 2

[designs.timer]
kind = "timer"
"""


def write(tmp_path: Path, text: str, name: str = "scenario.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write(tmp_path, text))
    return str(caught.value)


@pytest.mark.parametrize("name", ["flat", "bursty", "seed-system"])
def test_shipped_scenarios_load(name):
    scenario = load_scenario(REPOSITORY / "scenarios" / f"{name}.toml")

    assert scenario.name == name
    assert set(scenario.designs) == {"recursive", "timer"}


def test_seed_system_matches_production_settings():
    scenario = load_scenario(REPOSITORY / "scenarios" / "seed-system.toml")
    timer = scenario.designs["timer"]

    assert isinstance(timer, TimerDesign)
    assert timer.period_s == 60
    assert timer.baseline_s == 60
    assert timer.timeout_s == 300
    assert timer.wait_s == 3
    assert timer.batch_size == 10
    assert timer.memory_mb == 256
    assert timer.baseline_clock is BaselineClock.ENVIRONMENT
    assert timer.publish_api is PublishApi.SINGLE
    assert scenario.queue.visibility_timeout_s == 10
    assert scenario.queue.retention_s == 3600
    assert scenario.queue.max_receive_count is None


def test_minimal_scenario_gets_defaults(tmp_path):
    scenario = load_scenario(write(tmp_path, MINIMAL))

    assert scenario.queue.visibility_timeout_s == 30
    assert scenario.lambda_.concurrency_limit == 1000
    assert scenario.drain_s == 900
    assert scenario.source == (tmp_path / "scenario.toml").resolve()


def test_misspelled_key_is_named_with_suggestion(tmp_path):
    message = load_error(tmp_path, MINIMAL + "[queue]\nvisibilty_timeout_s = 10\n")

    assert "scenario.toml" in message
    assert "queue.visibilty_timeout_s" in message
    assert "did you mean 'visibility_timeout_s'" in message


def test_out_of_range_value_names_range(tmp_path):
    message = load_error(tmp_path, MINIMAL + "[queue]\nvisibility_timeout_s = 50000\n")

    assert "queue.visibility_timeout_s" in message
    assert "50000" in message
    assert "at most 43200" in message


def test_wrong_type_is_named(tmp_path):
    message = load_error(tmp_path, MINIMAL.replace("rate_per_s = 2", 'rate_per_s = "fast"'))

    assert "workload.rate_per_s" in message
    assert "'fast'" in message


def test_missing_section_is_named(tmp_path):
    text = 'name = "x"\nseed = 1\nduration_s = 5\n[designs.timer]\nkind = "timer"\n'

    message = load_error(tmp_path, text)

    assert "missing required key 'workload'" in message


def test_unknown_design_kind_lists_kinds(tmp_path):
    message = load_error(tmp_path, MINIMAL.replace('kind = "timer"', 'kind = "cron"'))

    assert "designs.timer" in message
    assert "recursive" in message


def test_timeout_must_exceed_baseline(tmp_path):
    message = load_error(tmp_path, MINIMAL + "baseline_s = 300\ntimeout_s = 300\n")

    assert "designs.timer" in message
    assert "timeout_s (300.0) must be above baseline_s (300.0)" in message


def test_margin_and_wait_must_fit_timeout(tmp_path):
    message = load_error(tmp_path, MINIMAL + "baseline_s = 5\ntimeout_s = 10\nsafety_margin_s = 8\nwait_s = 3\n")

    assert "safety_margin_s (8.0) plus wait_s (3) must be below timeout_s (10.0)" in message


def test_period_below_one_second_rejected(tmp_path):
    message = load_error(tmp_path, MINIMAL + "period_s = 0.5\n")

    assert "designs.timer.period_s" in message
    assert "at least 1" in message


def test_short_period_is_a_warning(tmp_path):
    scenario = load_scenario(write(tmp_path, MINIMAL + "period_s = 10\nbaseline_s = 10\ntimeout_s = 30\n"))

    warnings = scenario.warnings()

    assert len(warnings) == 1
    assert "period_s = 10.0" in warnings[0]


def test_zero_visibility_with_overlap_is_a_warning(tmp_path):
    text = MINIMAL + "timeout_s = 300\n[queue]\nvisibility_timeout_s = 0\n"

    warnings = load_scenario(write(tmp_path, text)).warnings()

    assert any("visibility timeout of 0" in warning for warning in warnings)


def test_offset_must_be_below_period(tmp_path):
    text = MINIMAL + "period_s = 10\nbaseline_s = 10\ntimeout_s = 30\n[eventbridge]\noffset_s = 20\n"

    message = load_error(tmp_path, text)

    assert "eventbridge.offset_s (20.0) must be below designs.timer.period_s (10.0)" in message


def test_delay_range_order_checked(tmp_path):
    message = load_error(tmp_path, MINIMAL.replace("rate_per_s = 2", "rate_per_s = 2\ndelay_s = { low = 10, high = 5 }"))

    assert "workload.delay_s" in message
    assert "high (5) must not be below low (10)" in message


def test_delay_above_limit_rejected(tmp_path):
    message = load_error(tmp_path, MINIMAL.replace("rate_per_s = 2", "rate_per_s = 2\ndelay_s = 901"))

    assert "workload.delay_s" in message
    assert "901" in message


def test_empty_bursty_workload_rejected(tmp_path):
    text = MINIMAL.replace('kind = "flat"\nrate_per_s = 2', 'kind = "bursty"')

    message = load_error(tmp_path, text)

    assert "the workload is empty" in message


def test_lognormal_order_checked(tmp_path):
    text = MINIMAL + "[api_latency]\nreceive_ms = { kind = \"lognormal\", median = 20, p99 = 5 }\n"

    message = load_error(tmp_path, text)

    assert "api_latency.receive_ms" in message
    assert "p99 (5.0) must not be below median (20.0)" in message


def test_number_means_fixed_distribution(tmp_path):
    scenario = load_scenario(write(tmp_path, MINIMAL + "[api_latency]\nreceive_ms = 7\n"))

    assert scenario.api_latency.receive_ms.kind == "fixed"
    assert scenario.api_latency.receive_ms.value == 7


def test_overrides_replace_keys_and_are_validated(tmp_path):
    path = write(tmp_path, MINIMAL)

    assert load_scenario(path, {"seed": 99}).seed == 99
    with pytest.raises(ScenarioError, match="seed"):
        load_scenario(path, {"seed": -1})


def test_recursive_defaults_follow_aws(tmp_path):
    text = MINIMAL.replace('[designs.timer]\nkind = "timer"', '[designs.chain]\nkind = "recursive"')

    design = load_scenario(write(tmp_path, text)).designs["chain"]

    assert isinstance(design, RecursiveDesign)
    assert design.allow_recursion is False
    assert design.safety_margin_s == 10


def test_invalid_toml_reports_line(tmp_path):
    message = load_error(tmp_path, "name = \n")

    assert "invalid TOML" in message
    assert "line 1" in message


def test_not_utf8_rejected(tmp_path):
    path = tmp_path / "latin.toml"
    path.write_bytes('name = "caf\u00e9"\n'.encode("latin-1"))

    with pytest.raises(ScenarioError, match="not UTF-8"):
        load_scenario(path)


def test_folder_rejected(tmp_path):
    with pytest.raises(ScenarioError, match="is a folder"):
        load_scenario(tmp_path)


def test_missing_file_rejected(tmp_path):
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario(tmp_path / "absent.toml")


def test_design_name_characters_checked(tmp_path):
    message = load_error(tmp_path, MINIMAL.replace("[designs.timer]", '[designs."my timer"]'))

    assert "design name 'my timer'" in message


@pytest.mark.parametrize(
    "line, key",
    [
        ('duration_s = "100"', "duration_s"),
        ("[lambda]\nbill_init = \"yes\"", "lambda.bill_init"),
        ("[queue]\nvisibility_timeout_s = true", "queue.visibility_timeout_s"),
    ],
)
def test_loose_scalars_rejected(tmp_path, line, key):
    text = MINIMAL.replace("duration_s = 60", line if line.startswith("duration_s") else "duration_s = 60")
    if not line.startswith("duration_s"):
        text = text.replace('[designs.timer]\nkind = "timer"', line + '\n[designs.timer]\nkind = "timer"')

    message = load_error(tmp_path, text)

    assert f"'{key}'" in message


def test_invalid_kind_lists_kinds(tmp_path):
    message = load_error(tmp_path, MINIMAL.replace('kind = "flat"', 'kind = "flatt"'))

    assert "invalid value for 'workload.kind': 'flatt'; allowed: 'flat', 'bursty', 'trace'" in message


def test_missing_design_kind_lists_kinds(tmp_path):
    message = load_error(tmp_path, MINIMAL.replace('kind = "timer"', "period_s = 60"))

    assert "missing required key 'designs.timer.kind'; allowed values: 'recursive', 'timer'" in message


def test_unknown_key_reported_before_missing(tmp_path):
    message = load_error(tmp_path, MINIMAL.replace("rate_per_s = 2", "rate_pr_s = 2"))
    lines = message.splitlines()

    assert "unknown key 'workload.rate_pr_s'; did you mean 'rate_per_s'?" in lines[0]
    assert "missing required key 'workload.rate_per_s'" in lines[1]
