"""Lambda handler entry points for both designs, as deployed functions and as the live engine runs them.

A deployed function sets its handler to ``sim.drain.handlers.recursive_handler`` or
``sim.drain.handlers.timer_handler``. Settings come from environment variables:

- ``DRAIN_QUEUE_URL`` and ``DRAIN_TOPIC_ARN`` (required);
- ``DRAIN_BATCH_SIZE`` (1 to 10, default 10), ``DRAIN_WAIT_S`` (0 to 20, default 3),
  ``DRAIN_VISIBILITY_TIMEOUT_S`` (optional), ``DRAIN_SAFETY_MARGIN_S`` (default 2 for the timer
  design, 10 for the recursive one), ``DRAIN_PUBLISH_API`` and ``DRAIN_DELETE_API`` (``batch`` or
  ``single``);
- timer design only: ``DRAIN_BASELINE_S`` (default 60) and ``DRAIN_BASELINE_CLOCK``
  (``invocation`` or ``environment``).

The recursive handler invokes its own function by the name Lambda sets in
``AWS_LAMBDA_FUNCTION_NAME``. Only the standard library and boto3 are imported.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, Mapping

import boto3
from botocore.config import Config

from sim.drain.aws import Boto3Effects, CallRecorder, run_program
from sim.drain.decisions import Entry, RecordingContext, record
from sim.drain.effects import DrainOutcome, DrainProgram, InvocationContext
from sim.drain.params import PollParams, RecursiveParams, TimerParams
from sim.drain.recursive import recursive_drain
from sim.drain.timer import timer_drain

logger = logging.getLogger(__name__)

# Module-level state survives between invocations on one execution environment, as module
# variables do in a deployed function.
ENVIRONMENT_STATE: dict[str, Any] = {}

# Set by the live engine's local runtime to measure calls; None in a deployed function.
RECORDER: CallRecorder | None = None
# Set to a list by the local runtime to record the program's decisions; None otherwise.
DECISION_LOG: list[Entry] | None = None

# A long poll waits up to 20 s, so the read timeout must be longer. The SQS guide requires an
# HTTP timeout above WaitTimeSeconds.
_CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"})
_clients: dict[str, Any] = {}

_MAX_BATCH_SIZE = 10
_MAX_WAIT_S = 20


class SettingsError(ValueError):
    """An environment variable of the handler is missing or invalid."""


def _client(service: str) -> Any:
    # Clients are created once per execution environment, like module-level clients in a
    # deployed function; the endpoint comes from AWS_ENDPOINT_URL_<SERVICE> when set.
    if service not in _clients:
        _clients[service] = boto3.client(service, config=_CLIENT_CONFIG)
    return _clients[service]


class LambdaClock:
    """Adapts the Lambda context object to the drain programs' InvocationContext."""

    def __init__(self, context: Any) -> None:
        self._context = context

    def get_remaining_time_in_millis(self) -> int:
        return int(self._context.get_remaining_time_in_millis())

    def clock_s(self) -> float:
        return time.monotonic()


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise SettingsError(f"environment variable {name} is missing; set it in the function configuration")
    return value


def _integer(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = environ.get(name)
    if text is None or text.strip() == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise SettingsError(f"{name}={text!r} is not an integer; allowed: {low} to {high}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} is out of range; allowed: {low} to {high}")
    return value


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    text = environ.get(name)
    if text is None or text.strip() == "":
        return default
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"{name}={text!r} is not a number of seconds") from None
    if not value > 0:
        raise SettingsError(f"{name}={value} must be above 0")
    return value


def _choice(environ: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = environ.get(name, default).strip() or default
    if value not in allowed:
        raise SettingsError(f"{name}={value!r} is invalid; allowed: {', '.join(allowed)}")
    return value


def poll_params_from_environment(environ: Mapping[str, str], default_margin_s: float) -> PollParams:
    """Read the receive, publish and delete settings from environment variables."""
    visibility_text = environ.get("DRAIN_VISIBILITY_TIMEOUT_S", "").strip()
    visibility_s = _integer(environ, "DRAIN_VISIBILITY_TIMEOUT_S", 0, 0, 43_200) if visibility_text else None
    return PollParams(
        batch_size=_integer(environ, "DRAIN_BATCH_SIZE", _MAX_BATCH_SIZE, 1, _MAX_BATCH_SIZE),
        wait_s=_integer(environ, "DRAIN_WAIT_S", 3, 0, _MAX_WAIT_S),
        visibility_timeout_s=visibility_s,
        safety_margin_s=_number(environ, "DRAIN_SAFETY_MARGIN_S", default_margin_s),
        publish_batch=_choice(environ, "DRAIN_PUBLISH_API", "batch", ("batch", "single")) == "batch",
        delete_batch=_choice(environ, "DRAIN_DELETE_API", "batch", ("batch", "single")) == "batch",
    )


def timer_params_from_environment(environ: Mapping[str, str]) -> TimerParams:
    return TimerParams(
        poll=poll_params_from_environment(environ, default_margin_s=2.0),
        baseline_s=_number(environ, "DRAIN_BASELINE_S", 60.0),
        baseline_from_environment=_choice(
            environ, "DRAIN_BASELINE_CLOCK", "invocation", ("invocation", "environment")
        )
        == "environment",
    )


def recursive_params_from_environment(environ: Mapping[str, str]) -> RecursiveParams:
    return RecursiveParams(poll=poll_params_from_environment(environ, default_margin_s=10.0))


def _effects(environ: Mapping[str, str]) -> Boto3Effects:
    return Boto3Effects(
        sqs=_client("sqs"),
        sns=_client("sns"),
        lambda_client=_client("lambda"),
        queue_url=_required(environ, "DRAIN_QUEUE_URL"),
        topic_arn=_required(environ, "DRAIN_TOPIC_ARN"),
        function_name=environ.get("AWS_LAMBDA_FUNCTION_NAME"),
        recorder=RECORDER,
    )


def _report(outcome: DrainOutcome) -> dict[str, Any]:
    logger.info(
        "drain stopped: %s after %d cycles, %d received, %d published",
        outcome.reason.value,
        outcome.cycles,
        outcome.received,
        outcome.published,
    )
    return {
        "reason": outcome.reason.value,
        "cycles": outcome.cycles,
        "received": outcome.received,
        "published": outcome.published,
    }


def run_drain(start: Callable[[InvocationContext], DrainProgram], context: Any, environ: Mapping[str, str]) -> dict[str, Any]:
    """Run a drain program against the services the environment names and report its outcome."""
    effects = _effects(environ)
    clock: InvocationContext = LambdaClock(context)
    if DECISION_LOG is None:
        return _report(run_program(start(clock), effects))
    recording_clock = RecordingContext(clock, DECISION_LOG)
    return _report(run_program(record(start(recording_clock), DECISION_LOG), effects))


def timer_handler(event: Any, context: Any) -> dict[str, Any]:
    """Entry point of the timer design, started by an EventBridge scheduled rule."""
    params = timer_params_from_environment(os.environ)
    return run_drain(lambda clock: timer_drain(params, clock, ENVIRONMENT_STATE), context, os.environ)


def recursive_handler(event: Any, context: Any) -> dict[str, Any]:
    """Entry point of the recursive design, started once and then by itself."""
    params = recursive_params_from_environment(os.environ)
    return run_drain(lambda clock: recursive_drain(params, clock, ENVIRONMENT_STATE), context, os.environ)
