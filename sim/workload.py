"""Message arrivals of one run: when each message falls due, and when and with what delay it was sent.

Workload rates describe when messages fall due (become visible in the queue), because the drain
receives a message only from then on. Due times are placed first in [0, duration_s). Each message then gets an
integer DelaySeconds, and its send time is the due time minus that delay. A message due less than
its delay after the run start gets its delay cut to the whole seconds since the start, so that no
message is sent before the run starts.
"""

from __future__ import annotations

import csv
import logging
import warnings
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim import limits
from sim.errors import ScenarioError
from sim.scenario import (
    Arrival,
    BurstyWorkload,
    DelaySetting,
    FlatWorkload,
    Scenario,
    TraceWorkload,
    UniformDelay,
)

logger = logging.getLogger(__name__)

CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")

# Bytes read at a time when counting the lines of a CSV trace.
_LINE_COUNT_CHUNK_BYTES = 1 << 20

# Above this count, float64 cannot tell k * step from (k + 1) * step, so the counting helpers
# return their first estimate instead of looping. No run can hold that many messages anyway.
_MAX_EXACT_COUNT = 2**52

_T = TypeVar("_T")


@dataclass(frozen=True)
class Arrivals:
    """Messages of one run, sorted by due time.

    In the output of generate_arrivals, ``due_at_s`` never decreases, lies in [0, duration_s)
    and equals ``send_at_s + delay_s`` computed in float64, bit for bit. ``send_at_s`` is 0 or
    above but not sorted. The constructor checks only that the three arrays have one length. It
    converts them to float64, int32 and float64 and makes them read-only, including arrays that
    the caller passed in.
    """

    send_at_s: np.ndarray  # float64, when the scheduler sends the message (SendMessage)
    delay_s: np.ndarray  # int32, the message's DelaySeconds, 0 to limits.MAX_DELAY_S
    due_at_s: np.ndarray  # float64, when the message becomes visible

    def __post_init__(self) -> None:
        columns = {
            "send_at_s": np.asarray(self.send_at_s, dtype=np.float64),
            "delay_s": np.asarray(self.delay_s, dtype=np.int32),
            "due_at_s": np.asarray(self.due_at_s, dtype=np.float64),
        }
        shapes = {name: array.shape for name, array in columns.items()}
        if len(set(shapes.values())) != 1 or columns["due_at_s"].ndim != 1:
            raise ValueError(f"Arrivals needs three 1-D arrays of one length, got shapes {shapes}")
        for name, array in columns.items():
            array.setflags(write=False)
            object.__setattr__(self, name, array)

    def __len__(self) -> int:
        return len(self.due_at_s)


def generate_arrivals(scenario: Scenario, rng: np.random.Generator) -> Arrivals:
    """Draw the messages of one run from the scenario's workload.

    All randomness comes from ``rng``, so one seed always gives the same arrays. A trace file is
    read and validated here, and problems in it raise ScenarioError.
    """
    workload = scenario.workload
    duration_s = scenario.duration_s

    trace_delays = None
    if isinstance(workload, TraceWorkload):
        due, trace_delays = _read_trace(scenario)
    elif isinstance(workload, FlatWorkload):
        due = _place_times(duration_s, workload.rate_per_s, workload.arrival, rng)
        due.sort()
    else:
        due = _bursty_due_times(workload, duration_s, rng)

    if trace_delays is None:
        delays = _draw_delays(workload.delay_s, len(due), rng)
    else:
        delays = trace_delays
    return _schedule(due, delays)


def estimate_message_count(scenario: Scenario) -> float:
    """Return the expected number of messages of one run, without drawing them.

    Flat and bursty workloads give the exact count for even arrivals and the mean for Poisson
    arrivals. A trace gives its number of data rows, read from the Parquet metadata or by counting
    CSV lines. That is an upper bound: it includes rows due at or after duration_s, and it counts
    blank lines and line breaks inside quoted CSV fields as rows.
    """
    workload = scenario.workload
    duration_s = scenario.duration_s

    if isinstance(workload, FlatWorkload):
        return _expected_count(duration_s, workload.rate_per_s, workload.arrival)
    if isinstance(workload, BurstyWorkload):
        base = 0.0
        if workload.base_rate_per_s > 0:
            base = _expected_count(duration_s, workload.base_rate_per_s, workload.arrival)
        herd = workload.herd_size * _herd_instant_count(workload, duration_s)
        return base + _expected_burst_count(workload, duration_s) + herd
    return float(_count_trace_rows(scenario))


# ---------------------------------------------------------------------------------------------
# Delays and send times


def _draw_delays(setting: DelaySetting, count: int, rng: np.random.Generator) -> np.ndarray:
    if isinstance(setting, UniformDelay):
        return rng.integers(setting.low, setting.high, size=count, endpoint=True, dtype=np.int32)
    return np.full(count, setting, dtype=np.int32)


def _schedule(due: np.ndarray, delays: np.ndarray) -> Arrivals:
    """Compute send times from sorted due times and build the Arrivals, in the same order."""
    # A message cannot be sent before the run starts, so its delay is at most floor(due).
    delays = np.minimum(delays, np.floor(due)).astype(np.int32)
    send = due - delays
    # due_at equals due bit for bit, so it stays sorted and below duration_s. The delay is an
    # integer and due < MAX_DURATION_S < 2**53, so both are multiples of ulp(due) and the
    # subtraction above is exact.
    due_at = send + delays
    return Arrivals(send_at_s=send, delay_s=delays, due_at_s=due_at)


# ---------------------------------------------------------------------------------------------
# Flat and bursty due times


def _place_times(
    span_s: float, rate_per_s: float, arrival: Arrival, rng: np.random.Generator
) -> np.ndarray:
    """Place arrival times at ``rate_per_s`` in [0, span_s), unsorted for Poisson arrivals.

    Poisson arrivals draw the count from Poisson(rate * span), then the times as uniforms, because
    a Poisson process with a known count places its points uniformly. Even arrivals are
    ``i / rate`` for i = 0, 1, ...
    """
    if arrival is Arrival.POISSON:
        count = rng.poisson(rate_per_s * span_s)
        # random() is below 1, and (1 - 2**-53) * span_s rounds to a value below span_s.
        return rng.random(count) * span_s
    return np.arange(_even_count(span_s, rate_per_s), dtype=np.float64) / rate_per_s


def _even_count(span_s: float, rate_per_s: float) -> int:
    """Return how many i >= 0 have i / rate_per_s < span_s, with the rounding of float64."""
    count = math.ceil(span_s * rate_per_s)
    if count >= _MAX_EXACT_COUNT:
        return count
    while count > 0 and (count - 1) / rate_per_s >= span_s:
        count -= 1
    while count / rate_per_s < span_s:
        count += 1
    return count


def _count_below(first: float, step: float, limit: float) -> int:
    """Return how many k >= 0 have first + k * step < limit, with the rounding of float64."""
    if first >= limit:
        return 0
    count = math.ceil((limit - first) / step)
    if count >= _MAX_EXACT_COUNT:
        return count
    while count > 0 and first + (count - 1) * step >= limit:
        count -= 1
    while first + count * step < limit:
        count += 1
    return count


def _expected_count(span_s: float, rate_per_s: float, arrival: Arrival) -> float:
    if arrival is Arrival.POISSON:
        return rate_per_s * span_s
    return float(_even_count(span_s, rate_per_s))


def _bursty_due_times(
    workload: BurstyWorkload, duration_s: float, rng: np.random.Generator
) -> np.ndarray:
    """Draw the base process, then the bursts, then add the herds, and sort the union."""
    parts = []
    if workload.base_rate_per_s > 0:
        parts.append(_place_times(duration_s, workload.base_rate_per_s, workload.arrival, rng))
    parts.append(_burst_times(workload, duration_s, rng))
    parts.append(_herd_times(workload, duration_s))
    due = np.concatenate(parts)
    due.sort()
    return due


@dataclass(frozen=True)
class _BurstWindows:
    """Burst windows starting at first_s + k * period_s below the run's end.

    Every window lasts length_s except the last, which the end of the run may cut short.
    burst_length_s <= burst_period_s, so only the last window can reach the end.
    """

    count: int
    first_s: float
    period_s: float
    length_s: float
    last_length_s: float


def _burst_windows(workload: BurstyWorkload, duration_s: float) -> _BurstWindows | None:
    if workload.burst_rate_per_s == 0 or workload.burst_length_s == 0:
        return None
    count = _count_below(workload.burst_start_s, workload.burst_period_s, duration_s)
    if count == 0:
        return None
    last_start = workload.burst_start_s + (count - 1) * workload.burst_period_s
    return _BurstWindows(
        count=count,
        first_s=workload.burst_start_s,
        period_s=workload.burst_period_s,
        length_s=workload.burst_length_s,
        last_length_s=min(workload.burst_length_s, duration_s - last_start),
    )


def _burst_times(
    workload: BurstyWorkload, duration_s: float, rng: np.random.Generator
) -> np.ndarray:
    """Place the extra arrivals of every burst window, without an array per window.

    Each message gets a window index and an offset into that window. Poisson arrivals draw
    positions on the windows laid end to end, which is one Poisson process of the total length.
    """
    windows = _burst_windows(workload, duration_s)
    if windows is None:
        return np.empty(0, dtype=np.float64)
    rate = workload.burst_rate_per_s

    if workload.arrival is Arrival.POISSON:
        total_length = (windows.count - 1) * windows.length_s + windows.last_length_s
        count = rng.poisson(rate * total_length)
        position = rng.random(count) * total_length
        window = np.minimum(position // windows.length_s, float(windows.count - 1))
        offset = position - window * windows.length_s
    else:
        per_window = _even_count(windows.length_s, rate)
        in_last = _even_count(windows.last_length_s, rate)
        index = np.arange((windows.count - 1) * per_window + in_last)
        window = (index // per_window).astype(np.float64)
        offset = (index % per_window) / rate

    start = windows.first_s + window * windows.period_s
    end = np.minimum(start + windows.length_s, duration_s)
    # Rounding of start + offset can reach the window's end, so each time is clamped below it.
    return np.minimum(start + offset, np.nextafter(end, -np.inf))


def _expected_burst_count(workload: BurstyWorkload, duration_s: float) -> float:
    windows = _burst_windows(workload, duration_s)
    if windows is None:
        return 0.0
    rate = workload.burst_rate_per_s
    if workload.arrival is Arrival.POISSON:
        return rate * ((windows.count - 1) * windows.length_s + windows.last_length_s)
    in_full = _even_count(windows.length_s, rate)
    return float((windows.count - 1) * in_full + _even_count(windows.last_length_s, rate))


def _herd_instant_count(workload: BurstyWorkload, duration_s: float) -> int:
    """Return how many multiples k * herd_period_s, k >= 1, lie below duration_s."""
    if workload.herd_size == 0:
        return 0
    # _count_below also counts k = 0, which has no herd.
    return _count_below(0.0, workload.herd_period_s, duration_s) - 1


def _herd_times(workload: BurstyWorkload, duration_s: float) -> np.ndarray:
    instants = _herd_instant_count(workload, duration_s)
    times = np.arange(1, instants + 1, dtype=np.float64) * workload.herd_period_s
    return np.repeat(times, workload.herd_size)


# ---------------------------------------------------------------------------------------------
# Trace files


@dataclass(frozen=True)
class _TraceFile:
    """A trace file and its settings, for reading and for error messages."""

    path: Path
    workload: TraceWorkload

    def error(self, text: str) -> ScenarioError:
        return ScenarioError(
            f"trace file {self.path} (workload.path = {self.workload.path!r}): {text}"
        )

    @property
    def is_parquet(self) -> bool:
        return self.path.suffix.lower() in PARQUET_SUFFIXES


def _locate_trace(scenario: Scenario) -> _TraceFile:
    """Resolve workload.path and check that it names a CSV or Parquet file.

    A relative path is relative to the scenario file's folder, or to the working directory for a
    scenario built in code without a source file.
    """
    workload = scenario.workload
    assert isinstance(workload, TraceWorkload)
    folder = scenario.source.parent if scenario.source is not None else Path.cwd()
    path = Path(workload.path).expanduser()
    if not path.is_absolute():
        path = folder / path
    trace = _TraceFile(path=path, workload=workload)
    suffixes = CSV_SUFFIXES + PARQUET_SUFFIXES
    accepted = ", ".join(suffixes[:-1]) + " or " + suffixes[-1]

    if not path.exists():
        raise trace.error(
            f"not found. Give the path of a {accepted} file, absolute or relative to {folder.resolve()}."
        )
    if path.is_dir():
        raise trace.error(f"is a folder. Give the path of a {accepted} file.")
    if path.suffix.lower() not in CSV_SUFFIXES + PARQUET_SUFFIXES:
        raise trace.error(
            f"unknown file extension {path.suffix!r}. Give the path of a {accepted} file."
        )
    return trace


def _read_trace(scenario: Scenario) -> tuple[np.ndarray, np.ndarray | None]:
    """Read and validate a trace, then drop the rows due at or after duration_s.

    Return the due times in seconds from the run start, and the delays if the file has a delay
    column. Every row is validated, including the rows that are dropped.
    """
    trace = _locate_trace(scenario)
    due_column, delay_column = _read_trace_columns(trace)

    due = _parse_due_times(trace, due_column)
    delays = None
    if delay_column is not None:
        delays = _parse_delays(trace, delay_column, due)

    kept_rows = int(np.searchsorted(due, scenario.duration_s, side="left"))
    if kept_rows < len(due):
        logger.warning(
            "%s: dropped %d of %d rows due at or after duration_s = %s",
            trace.path,
            len(due) - kept_rows,
            len(due),
            scenario.duration_s,
        )
        due = due[:kept_rows]
        if delays is not None:
            delays = delays[:kept_rows]
    return due, delays


def _read_trace_columns(trace: _TraceFile) -> tuple[pd.Series, pd.Series | None]:
    """Read the due column and, if the file has one, the delay column."""
    workload = trace.workload
    path = trace.path
    if trace.is_parquet:
        found = _read_file(trace, lambda: list(pq.read_schema(path).names))
    else:
        # All columns are parsed, because with usecols pandas ignores the extra fields of a row
        # that has more fields than the header, and such a row may have shifted columns.
        frame = _read_file(trace, lambda: _read_csv_strictly(path))
        found = list(frame.columns)

    if workload.due_column not in found:
        found_list = ", ".join(repr(name) for name in found) or "none"
        raise trace.error(
            f"has no column {workload.due_column!r} (workload.due_column). Columns found: "
            f"{found_list}. Set workload.due_column to the column of due times in seconds."
        )
    selected = [workload.due_column]
    if workload.delay_column in found and workload.delay_column != workload.due_column:
        selected.append(workload.delay_column)

    if trace.is_parquet:
        frame = _read_file(trace, lambda: _read_parquet_columns(path, selected))
    if len(frame) == 0:
        raise trace.error(
            f"contains no data rows. Add one row per message with its due time in column "
            f"{workload.due_column!r}."
        )

    delays = frame[workload.delay_column] if len(selected) == 2 else None
    return frame[workload.due_column], delays


def _read_csv_strictly(path: Path) -> pd.DataFrame:
    """Read a CSV trace, rejecting rows with more fields than the header.

    By default pandas would silently take the first field of such rows as the row index, and
    shift every value one column.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            return pd.read_csv(path, skipinitialspace=True, index_col=False)
        except pd.errors.ParserWarning:
            raise ValueError(_first_long_row(path)) from None


def _first_long_row(path: Path) -> str:
    """Describe the first data row of a CSV file that has more fields than its header."""
    with open(path, newline="", encoding="utf-8") as file:
        rows = csv.reader(file)
        header = next(rows, [])
        for number, row in enumerate(rows, start=1):
            if len(row) > len(header):
                return f"data row {number} has {len(row)} fields but the header has {len(header)}"
    return "a data row has more fields than the header row"


def _read_file(trace: _TraceFile, read: Callable[[], _T]) -> _T:
    """Call ``read`` and turn errors of reading the trace file into ScenarioError."""
    kind = "Parquet" if trace.is_parquet else "CSV"
    try:
        return read()
    except pd.errors.EmptyDataError:
        raise trace.error(
            "is empty. Give a CSV file with a header row and one row per message."
        ) from None
    except UnicodeDecodeError as error:
        raise trace.error(
            f"is not UTF-8 text (invalid byte at offset {error.start}). Save it as UTF-8."
        ) from None
    except (OSError, ValueError, pa.ArrowException) as error:
        reason = str(error).strip() or type(error).__name__
        raise trace.error(
            f"cannot be read as {kind}: {reason}. Check that the file is a valid {kind} file."
        ) from None


def _read_parquet_columns(path: Path, columns: list[str]) -> pd.DataFrame:
    table = pq.read_table(path, columns=columns)
    return pd.DataFrame({name: table.column(name).to_pandas() for name in columns})


def _count_trace_rows(scenario: Scenario) -> int:
    """Return the data rows of a trace without parsing its values.

    Parquet stores the count in its metadata. For CSV this counts line breaks, minus the header.
    """
    trace = _locate_trace(scenario)
    return _read_file(trace, lambda: _count_rows(trace.path, trace.is_parquet))


def _count_rows(path: Path, is_parquet: bool) -> int:
    if is_parquet:
        return pq.ParquetFile(path).metadata.num_rows
    lines = 0
    last = b"\n"
    with path.open("rb") as file:
        while chunk := file.read(_LINE_COUNT_CHUNK_BYTES):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        lines += 1
    return max(lines - 1, 0)


def _parse_due_times(trace: _TraceFile, column: pd.Series) -> np.ndarray:
    """Validate the due column and return it in seconds from the run start."""
    values, not_number = _to_float64(column)
    from_first_row = trace.workload.time_origin == "first_row"
    if from_first_row:
        accepted = (
            "numbers of seconds in ascending order, because time_origin = 'first_row' makes "
            "the first row's value the run start"
        )
    else:
        accepted = "numbers of seconds from the run start, 0 or above, in ascending order"

    problems = _missing_value_problems(values, not_number)
    if not from_first_row:
        # With time_origin = "first_row", a value below the first one is an ordering error.
        problems.append((values < 0, "is {value}, which is negative"))
    _raise_first_problem(trace, column, "workload.due_column", problems, accepted)

    descending = np.flatnonzero(values[1:] < values[:-1])
    if descending.size:
        index = int(descending[0]) + 1
        raise trace.error(
            f"data row {index + 1} of column {column.name!r} (workload.due_column) is "
            f"{_show(column.iloc[index])}, below {_show(column.iloc[index - 1])} in data row "
            f"{index}. Due times must not decrease from one row to the next, so sort the file "
            f"by {column.name!r}."
        )

    if from_first_row:
        values = values - values[0]
    return values


def _parse_delays(trace: _TraceFile, column: pd.Series, due: np.ndarray) -> np.ndarray:
    """Validate the delay column against the due times and return it as int32."""
    values, not_number = _to_float64(column)
    finite = np.isfinite(values)
    accepted = (
        f"whole seconds from 0 to {limits.MAX_DELAY_S} (the SQS maximum DelaySeconds), "
        f"and at most the row's due time"
    )
    problems = _missing_value_problems(values, not_number) + [
        (finite & (values != np.floor(values)), "is {value}, which is not a whole number"),
        (values < 0, "is {value}, which is negative"),
        (
            values > limits.MAX_DELAY_S,
            f"is {{value}}, which is above the SQS maximum DelaySeconds of {limits.MAX_DELAY_S}",
        ),
        (
            values > due,
            "is {value}, which is larger than the row's due time of {due} s after the run "
            "start, so the message would be sent before the run starts",
        ),
    ]
    _raise_first_problem(trace, column, "workload.delay_column", problems, accepted, due=due)
    return values.astype(np.int32)


def _to_float64(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Return the column as float64 and a mask of the cells that are present but not numbers.

    Booleans and timestamps count as not numbers. Missing cells become NaN.
    """
    if pd.api.types.is_bool_dtype(column):
        return np.full(len(column), np.nan), column.notna().to_numpy()
    if pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        return values, np.zeros(len(column), dtype=bool)
    if pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column):
        # Text, or Python objects such as the decimals of a Parquet decimal column.
        numbers = pd.to_numeric(column, errors="coerce")
        values = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
        return values, (numbers.isna() & column.notna()).to_numpy()
    return np.full(len(column), np.nan), column.notna().to_numpy()


def _missing_value_problems(
    values: np.ndarray, not_number: np.ndarray
) -> list[tuple[np.ndarray, str]]:
    return [
        (not_number, "is {value}, which is not a number"),
        (np.isnan(values) & ~not_number, "is empty or NaN"),
        (np.isinf(values), "is {value}, which is not a finite number"),
    ]


def _raise_first_problem(
    trace: _TraceFile,
    column: pd.Series,
    key: str,
    problems: list[tuple[np.ndarray, str]],
    accepted: str,
    due: np.ndarray | None = None,
) -> None:
    """Raise ScenarioError for the first row with a problem, describing its first problem.

    Each problem is a row mask and a sentence part that may use {value} and {due}.
    """
    bad = np.zeros(len(column), dtype=bool)
    for mask, _ in problems:
        bad |= mask
    if not bad.any():
        return

    index = int(np.argmax(bad))
    template = next(template for mask, template in problems if mask[index])
    due_text = f"{due[index]:.15g}" if due is not None else ""
    reason = template.format(value=_show(column.iloc[index]), due=due_text)
    raise trace.error(
        f"data row {index + 1} of column {column.name!r} ({key}) {reason}. "
        f"Accepted values: {accepted}."
    )


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)
