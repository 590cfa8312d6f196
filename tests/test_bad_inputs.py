"""Malformed inputs given to the real drainsim command: each must fail cleanly and write nothing.

The cases are listed in tests/bad_inputs/cases.toml, whose header describes its keys. Each case
runs ``python -m sim`` in its own temporary folder and must exit with status 2, print one error
line without a traceback, name what is wrong and what is accepted, and leave no file behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

INPUTS = Path(__file__).resolve().parent / "bad_inputs"
CASES: list[dict[str, Any]] = tomllib.loads((INPUTS / "cases.toml").read_text(encoding="utf-8"))["case"]

# drainsim's own error line, or argparse's "drainsim COMMAND: error:" line.
ERROR_LINE = re.compile(r"^drainsim(?: [a-z]+)?: error: ", re.MULTILINE)

# Every run spends about 1.5 s of CPU time on imports, so the selected cases run in parallel,
# one process per core and at most 8, and each test then checks its own case's outcome.
WORKERS = min(8, os.cpu_count() or 1)
RUN_TIMEOUT_S = 180

# A bug that started the live engine against AWS would send its requests to this local proxy
# address (port 9, discard, normally closed) and fail there instead of reaching the network.
NO_NETWORK = {
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "",
    "no_proxy": "",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@dataclass
class Outcome:
    """Result of one case's run, for the test to check."""

    paths: dict[str, str]
    result: subprocess.CompletedProcess[str] | None = None
    timed_out: bool = False
    skip_reason: str | None = None
    # The temporary folder before and after the run: relative path -> "folder" or a file hash.
    before: dict[str, str] = field(default_factory=dict)
    after: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Preparing a case


def fill(text: str, paths: dict[str, str]) -> str:
    """Replace the manifest placeholders ({tmp}, {inputs}, {case}, {out}) in ``text``.

    Plain replacement, not str.format, because fragments may contain braces of their own.
    """
    for name, value in paths.items():
        text = text.replace("{" + name + "}", value)
    return text


def snapshot(folder: Path) -> dict[str, str]:
    """Map every path under ``folder`` to "folder" or the SHA-256 of the file's bytes."""
    state = {}
    for path in sorted(folder.rglob("*")):
        key = path.relative_to(folder).as_posix()
        if path.is_dir() and not path.is_symlink():
            state[key] = "folder"
        else:
            state[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def setup_out_empty(paths: dict[str, str]) -> None:
    Path(paths["out"]).mkdir()


def setup_out_file(paths: dict[str, str]) -> None:
    Path(paths["out"]).write_text("a file, not a folder\n", encoding="utf-8")


def setup_out_scenario_file(paths: dict[str, str]) -> None:
    out = Path(paths["out"])
    out.mkdir()
    (out / "tiny").write_text("a file named like the scenario's results folder\n", encoding="utf-8")


def setup_out_read_only(paths: dict[str, str]) -> str | None:
    locked = Path(paths["tmp"]) / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    paths["out"] = str(locked / "results")
    if os.access(locked, os.W_OK):
        return f"{locked} has mode 0o555 but is still writable (root?), so --out cannot be read-only"
    return None


SETUPS: dict[str, Callable[[dict[str, str]], str | None]] = {
    "out-empty": setup_out_empty,
    "out-file": setup_out_file,
    "out-scenario-file": setup_out_scenario_file,
    "out-read-only": setup_out_read_only,
}


def write_generated_inputs(case: dict[str, Any], inputs: Path) -> None:
    """Write the files a case generates: a re-encoded copy of a text file, or a Parquet table."""
    if "recode" in case:
        recode = case["recode"]
        text = (inputs / recode["source"]).read_text(encoding="utf-8")
        (inputs / recode["file"]).write_bytes(text.encode(recode["encoding"]))
    if "parquet" in case:
        table = pa.table({name: pa.array(values) for name, values in case["parquet"]["columns"].items()})
        pq.write_table(table, inputs / case["parquet"]["file"])


def run_case(case: dict[str, Any], tmp: Path) -> Outcome:
    """Prepare the case's temporary folder, run drainsim there, and record what changed."""
    inputs = tmp / "inputs"
    shutil.copytree(INPUTS, inputs)
    write_generated_inputs(case, inputs)
    paths = {"tmp": str(tmp), "inputs": str(inputs), "out": str(tmp / "out")}
    paths["case"] = str(inputs / case["case"]) if "case" in case else ""
    outcome = Outcome(paths=paths)

    setup = case.get("setup")
    if setup is not None:
        outcome.skip_reason = SETUPS[setup](paths)
    if outcome.skip_reason is not None:
        return outcome

    outcome.before = snapshot(tmp)
    try:
        outcome.result = subprocess.run(
            [sys.executable, "-m", "sim", *(fill(arg, paths) for arg in case["args"])],
            capture_output=True,
            text=True,
            cwd=fill(case.get("cwd", "{tmp}"), paths),
            env={**os.environ, **NO_NETWORK},
            timeout=RUN_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        outcome.timed_out = True
    outcome.after = snapshot(tmp)
    return outcome


@pytest.fixture(scope="module")
def outcomes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Outcome]]:
    """Run every selected case of test_bad_input once, in parallel, and map case ids to outcomes."""
    selected = [
        item.callspec.params["case"]
        for item in request.session.items
        if getattr(item, "function", None) is test_bad_input
    ]
    folders = [tmp_path_factory.mktemp(case["id"]) for case in selected]
    try:
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            results = list(pool.map(run_case, selected, folders))
        yield {case["id"]: outcome for case, outcome in zip(selected, results)}
    finally:
        # pytest deletes old temporary folders later, and a read-only one would stop it.
        for folder in folders:
            locked = folder / "locked"
            if locked.exists():
                locked.chmod(0o755)


# ---------------------------------------------------------------------------------------------
# Tests


def describe_run(result: subprocess.CompletedProcess[str]) -> str:
    return f"command: {' '.join(result.args)}\nexit status: {result.returncode}\nstderr:\n{result.stderr}"


def changed_paths(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))


def test_manifest_is_complete():
    ids = [case["id"] for case in CASES]
    generated = {case["recode"]["file"] for case in CASES if "recode" in case}
    missing_inputs = [
        case["id"]
        for case in CASES
        if "case" in case and case["case"] not in generated and not (INPUTS / case["case"]).exists()
    ]

    assert len(CASES) >= 45
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert missing_inputs == []
    assert all(case["expect"] for case in CASES)
    assert {case.get("setup") for case in CASES} - {None} <= set(SETUPS)


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_bad_input(case: dict[str, Any], outcomes: dict[str, Outcome]):
    outcome = outcomes[case["id"]]
    if outcome.skip_reason is not None:
        pytest.skip(outcome.skip_reason)
    assert not outcome.timed_out, f"drainsim ran for more than {RUN_TIMEOUT_S} s"
    result = outcome.result
    assert result is not None
    stderr = result.stderr

    assert result.returncode == 2, describe_run(result)
    assert "Traceback" not in stderr, describe_run(result)
    assert ERROR_LINE.search(stderr), describe_run(result)
    for fragment in case["expect"]:
        expected = fill(fragment, outcome.paths)
        assert expected in stderr, f"missing {expected!r}\n{describe_run(result)}"
    for fragment in case.get("reject", []):
        rejected = fill(fragment, outcome.paths)
        assert rejected not in stderr, f"unexpected {rejected!r}\n{describe_run(result)}"

    if "setup" not in case:
        assert not Path(outcome.paths["out"]).exists(), f"{outcome.paths['out']} was created"
    assert changed_paths(outcome.before, outcome.after) == [], "drainsim left or changed files"
