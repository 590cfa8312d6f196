"""Record the decisions a drain program takes, and replay them against another copy of the program.

A decision log lists, in order, every time reading the program made, every request it yielded and
every result it got back, and how it stopped. Replaying a log sends the same results and time
readings to a fresh program and returns the requests it yields, so two engines can be shown to
drive the very same decisions. Only the standard library is used.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from sim.drain.effects import (
    Delete,
    DrainProgram,
    InvocationContext,
    InvokeSelf,
    Message,
    Publish,
    PublishOutcome,
    Receive,
)

# One entry: ("remaining", ms), ("clock", s), ("request", name, details), ("result", value) or
# ("stop", reason).
Entry = tuple[Any, ...]


def describe_request(request: Any) -> tuple[str, Any]:
    """Return a request's decision name and the arguments that define it, as plain data."""
    if isinstance(request, Receive):
        return "receive", [request.max_messages, request.wait_s, request.visibility_timeout_s]
    if isinstance(request, Publish):
        return "publish", [[str(message.message_id) for message in request.messages], request.batch]
    if isinstance(request, Delete):
        return "delete", [[str(message.message_id) for message in request.messages], request.batch]
    if isinstance(request, InvokeSelf):
        return "invoke_self", []
    raise TypeError(f"unknown effect request {request!r}")


def _plain(result: Any) -> Any:
    """Convert an effect result to JSON-compatible data."""
    if isinstance(result, PublishOutcome):
        return {"published": [list(m) for m in result.published], "failed": [list(m) for m in result.failed]}
    if isinstance(result, list):
        return [list(message) for message in result]
    return result


def _restore(request_name: str, data: Any) -> Any:
    if request_name == "publish":
        return PublishOutcome([Message(*m) for m in data["published"]], [Message(*m) for m in data["failed"]])
    if request_name in ("receive", "delete"):
        return [Message(*m) for m in data]
    return data


class RecordingContext:
    """An InvocationContext that logs every time reading of the context it wraps."""

    def __init__(self, context: InvocationContext, log: list[Entry]) -> None:
        self._context = context
        self._log = log

    def get_remaining_time_in_millis(self) -> int:
        value = self._context.get_remaining_time_in_millis()
        self._log.append(("remaining", value))
        return value

    def clock_s(self) -> float:
        value = self._context.clock_s()
        self._log.append(("clock", value))
        return value


def record(program: DrainProgram, log: list[Entry]) -> DrainProgram:
    """Wrap ``program`` so that each request, result and the stop reason are added to ``log``."""
    request = next(program)
    while True:
        name, details = describe_request(request)
        log.append(("request", name, details))
        result = yield request
        log.append(("result", _plain(result)))
        try:
            request = program.send(result)
        except StopIteration as stop:
            log.append(("stop", stop.value.reason.value))
            return stop.value


class _ReplayContext:
    def __init__(self, readings: Iterator[Entry]) -> None:
        self._readings = readings

    def _next(self, kind: str) -> Any:
        entry = next(self._readings)
        if entry[0] != kind:
            raise AssertionError(f"the program read {kind} where the log has {entry!r}")
        return entry[1]

    def get_remaining_time_in_millis(self) -> int:
        return self._next("remaining")

    def clock_s(self) -> float:
        return self._next("clock")


def replay(log: list[Entry], start: Callable[[InvocationContext], DrainProgram]) -> list[Entry]:
    """Drive a fresh program with a log's results and time readings; return the log it produces.

    ``start`` builds the program from a context. The returned log equals ``log`` exactly when
    the program takes the same decisions.
    """
    readings = iter([entry for entry in log if entry[0] in ("remaining", "clock")])
    results = iter([entry for entry in log if entry[0] == "result"])
    produced: list[Entry] = []
    context = RecordingContext(_ReplayContext(readings), produced)
    program = record(start(context), produced)
    request = next(program)
    while True:
        name, _ = describe_request(request)
        result = _restore(name, next(results)[1])
        try:
            request = program.send(result)
        except StopIteration:
            return produced
