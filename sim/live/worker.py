"""One Lambda execution environment: a process that imports a handler and runs invocations.

Started as ``python -m sim.live.worker MODULE.FUNCTION``. Importing the handler's module is the
real cold start. The process then reads one JSON request per line on standard input and writes
JSON lines on its original standard output: measurements as they happen, then the result, so
that what happened before a kill is kept. Anything the handler prints goes to standard error.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import time
import traceback
from typing import Any, Sequence

from sim.drain.effects import Message


class _Context:
    """The Lambda context object: remaining time is real, from the deadline the runtime sets."""

    def __init__(self, deadline_at_s: float, function_name: str, request_id: str, memory_mb: int) -> None:
        self._deadline_at_s = deadline_at_s
        self.function_name = function_name
        self.aws_request_id = request_id
        self.memory_limit_in_mb = memory_mb

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline_at_s - time.time()) * 1000))


class _StreamRecorder:
    """Writes every measurement to the runtime at once, tagged with the current request."""

    def __init__(self, output: Any) -> None:
        self._output = output
        self.request_id = ""

    def send(self, record: dict[str, Any]) -> None:
        record["request_id"] = self.request_id
        self._output.write(json.dumps(record) + "\n")
        self._output.flush()

    def record_call(self, api: str, started_at_s: float, duration_s: float, entries: int, failed: int) -> None:
        self.send({"type": "call", "api": api, "started_at": started_at_s, "duration_s": duration_s, "entries": entries, "failed": failed})

    def record_received(self, messages: Sequence[Message], at_s: float) -> None:
        self.send({"type": "received", "at": at_s, "bodies": [message.body for message in messages]})

    def record_published(self, messages: Sequence[Message], at_s: float) -> None:
        self.send({"type": "published", "at": at_s, "bodies": [message.body for message in messages]})


def main(argv: list[str]) -> int:
    handler_path = argv[1]
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    recorder = _StreamRecorder(protocol)
    # Lambda's Python runtime sends the handler's log records to its log stream. Here that is
    # standard error, which the runtime writes to the design's log file.
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    loaded_at = time.time()
    module_name, function_name = handler_path.rsplit(".", 1)
    module = importlib.import_module(module_name)
    handler = getattr(module, function_name)
    if hasattr(module, "RECORDER"):
        module.RECORDER = recorder
    recorder.send({"type": "ready", "init_s": time.time() - loaded_at})

    for line in sys.stdin:
        request = json.loads(line)
        recorder.request_id = request["request_id"]
        os.environ["_X_AMZN_TRACE_ID"] = request["trace_id"]
        decisions: list[Any] | None = [] if request.get("record_decisions") else None
        if hasattr(module, "DECISION_LOG"):
            module.DECISION_LOG = decisions
        context = _Context(request["deadline_at"], os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""), request["request_id"], request.get("memory_mb", 128))
        started = time.time()
        try:
            result = handler(request.get("event", {}), context)
            reply = {"type": "result", "ok": True, "result": result}
        except Exception as error:  # an unhandled error of the handler, reported like Lambda does
            reply = {"type": "result", "ok": False, "error": f"{type(error).__name__}: {error}", "trace": traceback.format_exc()}
        reply["handler_s"] = time.time() - started
        reply["decisions"] = decisions
        recorder.send(reply)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
