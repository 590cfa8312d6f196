"""Results folders: written atomically, read back for plotting and comparison.

A run is first written into a hidden temporary folder next to its destination and renamed into
place only when every file is complete, so an interrupted run never leaves a folder that looks
finished.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import platform
import shutil
import sys
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import pyarrow as pa

from sim.errors import ResultsError, UserInputError
from sim.runner import RunResult

logger = logging.getLogger(__name__)

SUMMARY_FILE = "summary.json"
RUN_INFO_FILE = "run.json"
TABLE_FILES = {
    "messages": "messages.parquet",
    "invocations": "invocations.parquet",
    "concurrency": "concurrency.parquet",
}
TEMPORARY_PREFIX = ".incomplete-"

PlotWriter = Callable[[Path, dict[str, Any], pd.DataFrame, pd.DataFrame, pd.DataFrame], list[Path]]


def check_output_root(root: Path) -> None:
    """Reject an output root that is a file or cannot be written, before any work starts."""
    if root.exists() and not root.is_dir():
        raise UserInputError(f"{root}: output path is a file; give a folder with --out")
    existing = root
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserInputError(f"{existing}: is a file, so the output folder {root} cannot be created")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserInputError(f"{existing}: output folder is not writable; choose another with --out")


def new_run_id(seed: int) -> str:
    """Return a run id from the current UTC time and the seed, such as 20261204T201500Z-seed42."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-seed{seed}"


def write_results(
    result: RunResult,
    root: Path,
    run_id: str,
    plot_writer: PlotWriter | None = None,
    run_info: dict[str, Any] | None = None,
    extra_tables: dict[str, pd.DataFrame] | None = None,
) -> Path:
    """Write a run under ``root/<scenario>/<run_id>`` atomically and return that folder."""
    parent = root / result.scenario.name
    parent.mkdir(parents=True, exist_ok=True)
    final = _unused_folder(parent / run_id)
    temporary = parent / f"{TEMPORARY_PREFIX}{final.name}-{os.getpid()}"
    if temporary.exists():
        shutil.rmtree(temporary)
    temporary.mkdir()
    try:
        _write_summary(temporary / SUMMARY_FILE, result.summary)
        for name, file_name in TABLE_FILES.items():
            frame: pd.DataFrame = getattr(result, name)
            frame.to_parquet(temporary / file_name, index=False)
        for name, frame in (extra_tables or {}).items():
            frame.to_parquet(temporary / f"{name}.parquet", index=False)
        _write_summary(temporary / RUN_INFO_FILE, _run_info(result, run_info))
        if plot_writer is not None:
            plot_writer(temporary, result.summary, result.messages, result.invocations, result.concurrency)
        os.rename(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    logger.info("results written to %s", final)
    return final


def _unused_folder(folder: Path) -> Path:
    candidate = folder
    suffix = 2
    while candidate.exists():
        candidate = folder.with_name(f"{folder.name}-{suffix}")
        suffix += 1
    return candidate


def _write_summary(path: Path, content: dict[str, Any]) -> None:
    path.write_text(json.dumps(content, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _run_info(result: RunResult, extra: dict[str, Any] | None) -> dict[str, Any]:
    # Everything that changes from one execution to the next lives here, not in summary.json,
    # so the same scenario and seed give a byte-identical summary.
    info = {
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "scenario_file": str(result.scenario.source.resolve()) if result.scenario.source else None,
        "wall_time_s": {name: round(seconds, 3) for name, seconds in result.wall_time_s.items()},
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
    info.update(extra or {})
    return info


def load_results(folder: Path) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Read a results folder back: the summary and the messages, invocations and concurrency tables."""
    if not folder.exists():
        raise ResultsError(f"{folder}: results folder not found")
    if not folder.is_dir():
        raise ResultsError(f"{folder}: is a file; give a results folder such as results/flat/<run-id>")
    if folder.name.startswith(TEMPORARY_PREFIX):
        raise ResultsError(f"{folder}: an incomplete run left by an interruption; delete it")

    summary_path = folder / SUMMARY_FILE
    if not summary_path.is_file():
        raise ResultsError(f"{folder}: no {SUMMARY_FILE}; this is not a drainsim results folder")
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultsError(f"{summary_path}: not valid JSON ({error}); the file is damaged") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("designs"), dict):
        raise ResultsError(f"{summary_path}: has no 'designs' table; not written by drainsim")

    tables = []
    for file_name in TABLE_FILES.values():
        path = folder / file_name
        if not path.is_file():
            raise ResultsError(f"{folder}: {file_name} is missing; the results folder is incomplete")
        try:
            tables.append(pd.read_parquet(path))
        except (OSError, ValueError, pa.ArrowException) as error:
            raise ResultsError(f"{path}: cannot be read as Parquet ({error}); the file is damaged") from None
    return summary, tables[0], tables[1], tables[2]
