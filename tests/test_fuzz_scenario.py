"""Fuzzing the scenario loader: any document either loads or raises ScenarioError, nothing else."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.errors import ScenarioError
from sim.scenario import Scenario, load_scenario

# Real keys make the fuzzer reach deep validation; junk keys exercise the unknown-key path.
KEYS = [
    "name", "seed", "duration_s", "drain_s", "description", "workload", "queue", "sns", "lambda",
    "eventbridge", "live", "designs", "sweep", "kind", "rate_per_s", "arrival", "delay_s", "low",
    "high", "base_rate_per_s", "burst_rate_per_s", "burst_length_s", "burst_period_s", "herd_size",
    "path", "visibility_timeout_s", "retention_s", "max_receive_count", "timeout_s", "baseline_s",
    "period_s", "wait_s", "batch_size", "safety_margin_s", "timer", "recursive", "median", "p99",
    "value", "receive_ms", "parameters", "values", "replications", "points", "sample", "x", "",
]
KINDS = ["flat", "bursty", "trace", "timer", "recursive", "fixed", "lognormal", "uniform", "grid", "random"]

scalars = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(KINDS),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), children, max_size=5),
    ),
    max_leaves=25,
)
documents = st.dictionaries(st.sampled_from(KEYS), values, max_size=10)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return "{" + ", ".join(f"{json.dumps(key)} = {toml_value(item)}" for key, item in value.items()) + "}"


def to_toml(document: dict[str, Any]) -> str:
    return "\n".join(f"{json.dumps(key)} = {toml_value(value)}" for key, value in document.items()) + "\n"


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@FUZZ
@given(documents)
def test_any_document_loads_or_raises_scenario_error(tmp_path_factory, document):
    path = Path(tmp_path_factory.mktemp("fuzz")) / "scenario.toml"
    path.write_text(to_toml(document), encoding="utf-8")

    try:
        scenario = load_scenario(path)
    except ScenarioError as error:
        assert str(error).startswith(str(path))
    else:
        assert isinstance(scenario, Scenario)


@FUZZ
@given(st.binary(max_size=200))
def test_any_bytes_load_or_raise_scenario_error(tmp_path_factory, data):
    path = Path(tmp_path_factory.mktemp("fuzz")) / "scenario.toml"
    path.write_bytes(data)

    try:
        load_scenario(path)
    except ScenarioError as error:
        assert str(path) in str(error)


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS), values, max_size=6))
def test_valid_base_with_fuzzed_design_loads_or_raises(tmp_path_factory, design):
    document = {
        "name": "fuzz",
        "seed": 1,
        "duration_s": 60,
        "workload": {"kind": "flat", "rate_per_s": 1},
        "designs": {"d": {"kind": "timer", **design}},
    }
    path = Path(tmp_path_factory.mktemp("fuzz")) / "scenario.toml"
    path.write_text(to_toml(document), encoding="utf-8")

    try:
        scenario = load_scenario(path)
    except ScenarioError as error:
        assert "designs.d" in str(error) or str(error).startswith(str(path))
    else:
        assert "d" in scenario.designs
