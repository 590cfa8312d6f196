"""Scenario files: one TOML document describes a whole study, validated into typed settings.

Every value is checked here, at the boundary, so the model can trust what it is given. Unknown
keys are errors because they are almost always typos.
"""

from __future__ import annotations

import enum
import json
import logging
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from sim import limits
from sim.distributions import Distribution, Fixed, Lognormal
from sim.errors import ScenarioError
from sim.scenario_errors import format_validation_error
from sim.sweep_spec import SweepSettings, apply_point

logger = logging.getLogger(__name__)

# A run's horizon is bounded so that one typo in duration_s cannot start a months-long simulation.
MAX_DURATION_S = 30 * 24 * 3600.0
MAX_SEED = 2**63 - 1


class _Settings(BaseModel):
    # Infinity and NaN are never meaningful settings; TOML allows them, so they are rejected here.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


class Arrival(str, enum.Enum):
    """Placement of arrival instants at a given rate."""

    POISSON = "poisson"
    EVEN = "even"


class PublishApi(str, enum.Enum):
    """SNS API used to publish a received batch."""

    BATCH = "batch"  # PublishBatch, up to 10 entries per request
    SINGLE = "single"  # one Publish per message, sent concurrently


class DeleteApi(str, enum.Enum):
    """SQS API used to delete a published batch."""

    BATCH = "batch"  # DeleteMessageBatch, up to 10 entries per request
    SINGLE = "single"  # one DeleteMessage per message, sent concurrently


class BaselineClock(str, enum.Enum):
    """When the timer design's execution baseline starts counting."""

    INVOCATION = "invocation"
    # The production code this design comes from started the clock when its module loaded, so on
    # a warm execution environment the baseline had already passed. The simulator starts it at
    # the environment's first handler start, one Init phase after the module load.
    ENVIRONMENT = "environment"


class Architecture(str, enum.Enum):
    X86_64 = "x86_64"
    ARM64 = "arm64"


# ---------------------------------------------------------------------------------------------
# Workloads


class UniformDelay(_Settings):
    """Integer DelaySeconds drawn uniformly from low to high, both included."""

    low: int = Field(ge=0, le=limits.MAX_DELAY_S)
    high: int = Field(ge=0, le=limits.MAX_DELAY_S)

    @model_validator(mode="after")
    def _check_order(self) -> UniformDelay:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must not be below low ({self.low})")
        return self


DelaySetting = Union[Annotated[int, Field(ge=0, le=limits.MAX_DELAY_S)], UniformDelay]


class FlatWorkload(_Settings):
    """Messages fall due at a constant rate."""

    kind: Literal["flat"]
    rate_per_s: float = Field(gt=0, le=1_000_000)
    arrival: Arrival = Arrival.POISSON
    delay_s: DelaySetting = 0


class BurstyWorkload(_Settings):
    """A base rate, periodic bursts at a higher rate, and a herd due at each round time."""

    kind: Literal["bursty"]
    base_rate_per_s: float = Field(default=0.0, ge=0, le=1_000_000)
    burst_rate_per_s: float = Field(default=0.0, ge=0, le=1_000_000)
    burst_length_s: float = Field(default=0.0, ge=0)
    burst_period_s: float = Field(default=600.0, gt=0)
    burst_start_s: float = Field(default=0.0, ge=0)
    # People schedule on round times, so many messages fall due on the same second.
    herd_size: int = Field(default=0, ge=0, le=10_000_000)
    herd_period_s: float = Field(default=60.0, gt=0)
    arrival: Arrival = Arrival.POISSON
    delay_s: DelaySetting = 0

    @model_validator(mode="after")
    def _check_shape(self) -> BurstyWorkload:
        if self.burst_length_s > self.burst_period_s:
            raise ValueError(
                f"burst_length_s ({self.burst_length_s}) must not exceed burst_period_s "
                f"({self.burst_period_s})"
            )
        has_bursts = self.burst_rate_per_s > 0 and self.burst_length_s > 0
        if self.base_rate_per_s == 0 and not has_bursts and self.herd_size == 0:
            raise ValueError(
                "the workload is empty: set base_rate_per_s, burst_rate_per_s with "
                "burst_length_s, or herd_size above 0"
            )
        return self


class TraceWorkload(_Settings):
    """Due times read from a CSV or Parquet file, one message per row."""

    kind: Literal["trace"]
    path: str = Field(min_length=1)
    due_column: str = "due_at_s"
    # The delay column is optional. Without one, every row gets a delay drawn from delay_s; with
    # one, every row needs a value.
    delay_column: str = "delay_s"
    # "zero": due times are seconds from the start of the run; "first_row": the first row's due
    # time is the start (for epoch timestamps).
    time_origin: Literal["zero", "first_row"] = "zero"
    delay_s: DelaySetting = 0


Workload = Annotated[Union[FlatWorkload, BurstyWorkload, TraceWorkload], Field(discriminator="kind")]


# ---------------------------------------------------------------------------------------------
# Services


class QueueSettings(_Settings):
    """The SQS standard delay queue."""

    visibility_timeout_s: int = Field(
        default=limits.DEFAULT_VISIBILITY_TIMEOUT_S, ge=0, le=limits.MAX_VISIBILITY_TIMEOUT_S
    )
    retention_s: int = Field(
        default=limits.DEFAULT_RETENTION_S, ge=limits.MIN_RETENTION_S, le=limits.MAX_RETENTION_S
    )
    # Absent means no dead-letter queue: messages are redelivered until retention expires.
    max_receive_count: int | None = Field(
        default=None, ge=limits.MIN_MAX_RECEIVE_COUNT, le=limits.MAX_MAX_RECEIVE_COUNT
    )
    # A short poll samples a subset of SQS servers, so each visible message may be missed.
    short_poll_miss_probability: float = Field(default=0.2, ge=0, le=1)
    # In rare cases a long poll returns empty although messages are visible.
    long_poll_empty_probability: float = Field(default=0.0, ge=0, le=1)
    # At-least-once delivery: the chance that a deleted message comes back once more.
    duplicate_probability: float = Field(default=0.0, ge=0, le=1)
    # The scheduler sends with SendMessage (1) or SendMessageBatch (2 to 10 entries).
    producer_batch_size: int = Field(default=1, ge=1, le=limits.MAX_BATCH_ENTRIES)
    # A waiting long poll notices a message whose delay or visibility timeout ended only at its
    # next check, every this many seconds. A message sent without delay wakes it at once. 0 is
    # AWS. Measured on moto 5.2: about 1 s.
    wakeup_granularity_s: float = Field(default=0.0, ge=0, le=limits.MAX_WAIT_TIME_S)


def _latency(median_ms: float, p99_ms: float) -> Lognormal:
    return Lognormal(kind="lognormal", median=median_ms, p99=p99_ms)


class ApiLatencySettings(_Settings):
    """Round-trip latency of each API call, in milliseconds.

    The defaults are estimates for a caller in the same Region: AWS publishes no latency figures,
    and the only measured one found is about 16 ms for SendMessage. The scheduler's sends are
    counted, not simulated, so they have no latency setting.
    """

    receive_ms: Distribution = _latency(12, 60)
    delete_ms: Distribution = _latency(10, 50)
    delete_batch_ms: Distribution = _latency(12, 60)
    publish_ms: Distribution = _latency(15, 70)
    publish_batch_ms: Distribution = _latency(20, 90)
    invoke_ms: Distribution = _latency(20, 100)


class SnsSettings(_Settings):
    """The SNS topic that receives the drained messages."""

    # Chance that one Publish call, or one PublishBatch entry, fails.
    failure_probability: float = Field(default=0.0, ge=0, le=1)


class LambdaSettings(_Settings):
    """The Lambda service settings shared by every design."""

    # Concurrency available to the function: its reserved concurrency, or the account's limit.
    concurrency_limit: int = Field(default=limits.DEFAULT_CONCURRENCY_LIMIT, ge=1, le=100_000)
    # AWS: cold starts last from under 100 ms to over 1 s; Python typically 100 to 300 ms.
    init_duration_ms: Distribution = _latency(250, 900)
    # How long an idle execution environment survives. Measured by third parties at about
    # 10 minutes since 2019; AWS publishes no value.
    idle_reclaim_s: Distribution = Fixed(value=600)
    # Chance that an invocation raises an unhandled error at a random point of its run.
    failure_probability: float = Field(default=0.0, ge=0, le=1)
    # Time from an asynchronous Invoke to the start of the invocation (not published by AWS).
    async_dispatch_delay_ms: Distribution = _latency(40, 250)
    # The asynchronous event queue is eventually consistent and may deliver an event twice.
    async_duplicate_probability: float = Field(default=0.0, ge=0, le=1)
    max_retry_attempts: int = Field(default=limits.MAX_ASYNC_RETRY_ATTEMPTS, ge=0, le=limits.MAX_ASYNC_RETRY_ATTEMPTS)
    max_event_age_s: int = Field(default=limits.MAX_EVENT_AGE_S, ge=limits.MIN_EVENT_AGE_S, le=limits.MAX_EVENT_AGE_S)
    architecture: Architecture = Architecture.X86_64
    # Since August 2025 the Init phase of on-demand functions is billed like the handler's time.
    bill_init: bool = True


class EventBridgeSettings(_Settings):
    """The scheduled rule that starts the timer design."""

    # Second within each period at which the rule fires (AWS picks one within the minute).
    offset_s: float = Field(default=0.0, ge=0, lt=limits.SCHEDULE_MINUTE_S)
    # Extra random time between the scheduled fire and the start of delivery.
    jitter_s: Distribution = Fixed(value=0)
    # Delay between the fire and the asynchronous Invoke. AWS documents that targets can lag by
    # several seconds.
    delivery_delay_s: Distribution = _latency(0.5, 3)
    duplicate_probability: float = Field(default=0.0, ge=0, le=1)


class LiveSettings(_Settings):
    """Settings of the live engine's replay of the scenario against a real SQS/SNS server."""

    # The producer sends each message this long before it is due, or with its own DelaySeconds
    # if that is shorter. A moto server's calls slow down with every message it holds, delayed
    # ones included, so a short lead keeps the queue shallow.
    producer_lead_s: int = Field(default=2, ge=0, le=limits.MAX_DELAY_S)
    # Above this many messages in the queue, and with slow receives, the run warns that the
    # endpoint rather than the design limits the drain.
    queue_depth_warning: int = Field(default=500, ge=1)


# ---------------------------------------------------------------------------------------------
# Designs


class _DrainDesign(_Settings):
    memory_mb: int = Field(default=256, ge=limits.MIN_MEMORY_MB, le=limits.MAX_MEMORY_MB)
    timeout_s: float = Field(default=300.0, gt=0, le=limits.MAX_FUNCTION_TIMEOUT_S)
    batch_size: int = Field(default=limits.MAX_RECEIVE_MESSAGES, ge=1, le=limits.MAX_RECEIVE_MESSAGES)
    wait_s: int = Field(default=3, ge=0, le=limits.MAX_WAIT_TIME_S)
    # Per-receive VisibilityTimeout; absent means the queue's own.
    visibility_timeout_s: int | None = Field(default=None, ge=0, le=limits.MAX_VISIBILITY_TIMEOUT_S)
    safety_margin_s: float = Field(default=2.0, gt=0)
    publish_api: PublishApi = PublishApi.BATCH
    delete_api: DeleteApi = DeleteApi.BATCH

    @model_validator(mode="after")
    def _check_margin(self) -> _DrainDesign:
        if self.safety_margin_s + self.wait_s >= self.timeout_s:
            raise ValueError(
                f"safety_margin_s ({self.safety_margin_s}) plus wait_s ({self.wait_s}) must be "
                f"below timeout_s ({self.timeout_s}), or no poll could ever start"
            )
        return self


class RecursiveDesign(_DrainDesign):
    """One chain that drains the queue and invokes itself before its timeout."""

    kind: Literal["recursive"]
    safety_margin_s: float = Field(default=10.0, gt=0)
    # Lambda's recursive loop detection drops the 17th invocation of a chain unless recursion
    # is allowed (PutFunctionRecursionConfig RecursiveLoop=Allow).
    allow_recursion: bool = False
    chains: int = Field(default=1, ge=1, le=1_000)
    start_at_s: float = Field(default=0.0, ge=0)
    # A watchdog timer restarts dead chains every this many seconds; 0 disables it.
    watchdog_period_s: float = Field(default=0.0, ge=0)

    @field_validator("watchdog_period_s")
    @classmethod
    def _check_watchdog(cls, value: float) -> float:
        if 0 < value < 1:
            raise ValueError(f"watchdog_period_s ({value}) must be 0 (off) or at least 1")
        return value


class TimerDesign(_DrainDesign):
    """Instances started by a scheduled rule, each draining for a baseline and beyond under load."""

    kind: Literal["timer"]
    period_s: float = Field(default=60.0, ge=1, le=86_400)
    baseline_s: float = Field(default=60.0, gt=0)
    baseline_clock: BaselineClock = BaselineClock.INVOCATION

    @model_validator(mode="after")
    def _check_timing(self) -> TimerDesign:
        if self.timeout_s <= self.baseline_s:
            raise ValueError(
                f"timeout_s ({self.timeout_s}) must be above baseline_s ({self.baseline_s})"
            )
        return self


Design = Annotated[Union[RecursiveDesign, TimerDesign], Field(discriminator="kind")]


# ---------------------------------------------------------------------------------------------
# The scenario


class Scenario(_Settings):
    """A whole study: workload, services and the designs to compare."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    description: str = ""
    seed: int = Field(ge=0, le=MAX_SEED)
    # Messages fall due during [0, duration_s).
    duration_s: float = Field(gt=0, le=MAX_DURATION_S)
    # Simulated time after the last due time, for stragglers; what is undelivered then is reported.
    drain_s: float = Field(default=900.0, ge=0, le=MAX_DURATION_S)
    workload: Workload
    queue: QueueSettings = QueueSettings()
    sns: SnsSettings = SnsSettings()
    api_latency: ApiLatencySettings = ApiLatencySettings()
    lambda_: LambdaSettings = Field(default=LambdaSettings(), alias="lambda")
    eventbridge: EventBridgeSettings = EventBridgeSettings()
    live: LiveSettings = LiveSettings()
    designs: dict[str, Design] = Field(min_length=1)
    # Parameters ``drainsim sweep`` and ``drainsim tune`` vary; other commands ignore it.
    sweep: SweepSettings | None = None

    _source: Path | None = PrivateAttr(default=None)
    # The TOML document the scenario was validated from, for sweeps that change its keys.
    _document: dict[str, Any] | None = PrivateAttr(default=None)

    @field_validator("designs")
    @classmethod
    def _check_design_names(cls, designs: dict[str, Any]) -> dict[str, Any]:
        for name in designs:
            if not name or not all(c.isalnum() or c in "_-" for c in name):
                raise ValueError(
                    f"design name {name!r} may only contain letters, digits, '_' and '-'"
                )
        return designs

    @model_validator(mode="after")
    def _check_timer_offset(self) -> Scenario:
        for name, design in self.designs.items():
            if isinstance(design, TimerDesign) and self.eventbridge.offset_s >= design.period_s:
                raise ValueError(
                    f"eventbridge.offset_s ({self.eventbridge.offset_s}) must be below "
                    f"designs.{name}.period_s ({design.period_s})"
                )
        return self

    @model_validator(mode="after")
    def _check_sweep_design(self) -> Scenario:
        if self.sweep is not None and self.sweep.design is not None and self.sweep.design not in self.designs:
            raise ValueError(
                f"sweep.design {self.sweep.design!r} is not a design of this scenario; "
                f"it defines: {', '.join(self.designs)}"
            )
        return self

    @property
    def source(self) -> Path | None:
        """File the scenario was loaded from, if any."""
        return self._source

    def warnings(self) -> list[str]:
        """Return settings that are allowed but unlike AWS or likely to mislead."""
        found = []
        for name, design in self.designs.items():
            if isinstance(design, TimerDesign) and design.period_s < limits.MIN_SCHEDULE_PERIOD_S:
                found.append(
                    f"designs.{name}.period_s = {design.period_s}: AWS scheduled rules fire at "
                    f"most once a minute; a shorter period only exists in this model"
                )
            visibility_s = design.visibility_timeout_s
            if visibility_s is None:
                visibility_s = self.queue.visibility_timeout_s
            overlapping = isinstance(design, TimerDesign) and design.timeout_s > design.period_s
            overlapping = overlapping or (
                isinstance(design, RecursiveDesign) and design.chains > 1
            )
            if visibility_s == 0 and overlapping:
                found.append(
                    f"designs.{name}: a visibility timeout of 0 with overlapping consumers "
                    f"lets them receive and publish the same messages"
                )
        return found

    def with_source(self, path: Path) -> Scenario:
        self._source = path
        return self

    @property
    def document(self) -> dict[str, Any]:
        """The scenario as a plain document (the validated file, or the settings dumped)."""
        if self._document is not None:
            return self._document
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """Read and validate a scenario file.

    ``overrides`` replaces top-level keys (from command-line options) before validation. Raises
    ScenarioError with the file, key, value and allowed range for any problem.
    """
    path = Path(path)
    data = _read_toml(path)
    if overrides:
        data.update(overrides)

    # Validating the file's JSON form in strict mode rejects the loose conversions pydantic
    # otherwise allows: ``wait_s = true`` becoming 1, or ``"20"`` becoming a number.
    document = json.dumps(data, default=str)
    try:
        scenario = Scenario.model_validate_json(document, strict=True)
    except ValidationError as error:
        raise ScenarioError(format_validation_error(path, error, Scenario)) from None
    if scenario.sweep is not None:
        _check_sweep_values(path, data, scenario.sweep)
    scenario = scenario.with_source(path)
    scenario._document = data
    return scenario


def validate_document(data: dict[str, Any], path: Path | None = None) -> Scenario:
    """Validate a scenario document strictly, as ``load_scenario`` does, and keep it."""
    scenario = Scenario.model_validate_json(json.dumps(data, default=str), strict=True)
    if path is not None:
        scenario = scenario.with_source(path)
    scenario._document = data
    return scenario


def _check_sweep_values(path: Path, data: dict[str, Any], sweep: SweepSettings) -> None:
    """Check that every swept value, set alone, gives a valid scenario.

    Combinations can still be invalid (a timeout not above the baseline); a sweep skips those.
    """
    for parameter, values in sweep.axes().items():
        for value in values:
            try:
                document = apply_point(data, {parameter: value})
            except KeyError:
                raise ScenarioError(
                    f"{path}: invalid sweep parameter '{parameter}': no such table in the scenario; "
                    f"name a key by its dotted path, such as designs.timer.period_s"
                ) from None
            try:
                Scenario.model_validate_json(json.dumps(document, default=str), strict=True)
            except ValidationError as error:
                detail = format_validation_error(path, error, Scenario).splitlines()[0]
                detail = detail.removeprefix(f"{path}: ")
                raise ScenarioError(f"{path}: sweep parameter '{parameter}' = {value!r} is invalid: {detail}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ScenarioError(f"{path}: scenario file not found")
    if path.is_dir():
        raise ScenarioError(f"{path}: is a folder; give a scenario file (.toml)")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ScenarioError(
            f"{path}: not UTF-8 text (invalid byte at offset {error.start}); save it as UTF-8"
        ) from None
    except OSError as error:
        raise ScenarioError(f"{path}: cannot be read: {error.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"{path}: invalid TOML: {error}") from None
