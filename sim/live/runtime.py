"""A local Lambda runtime: execution environments as processes, asynchronous invocation, retries.

It follows the same rules as the simulated Lambda service (``sim.lambda_service``):

- a cold start imports the handler in a new process, and an idle process is reused warm until
  it is reclaimed;
- an invocation that passes its timeout is killed with SIGKILL and its process discarded;
- invocations above the concurrency limit are throttled and retried with backoff;
- a failed invocation is retried twice, about 1 and 2 minutes later;
- recursive loop detection drops the 17th invocation of a chain.
 A small HTTP server on 127.0.0.1 serves Lambda's asynchronous Invoke API, so a handler's
boto3 self-invocation reaches this runtime unchanged. Chains are followed the way AWS does it:
botocore copies the ``_X_AMZN_TRACE_ID`` variable of the invocation into the X-Amzn-Trace-Id header,
whose Lineage field carries the chain and its depth.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import math
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import numpy as np

from sim import limits
from sim.distributions import Sampler
from sim.lambda_service import FAILED_REASONS, DropReason, EndReason, Trigger, next_throttle_backoff_s, too_old
from sim.scenario import LambdaSettings

logger = logging.getLogger(__name__)

_LINEAGE = re.compile(r"Lineage=([0-9a-f]+):(\d+)")
_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")
# How often idle processes are checked for reclaim, and how long the dispatcher sleeps at most.
_HOUSEKEEPING_S = 0.5


@dataclass
class LiveEvent:
    """One event in the local asynchronous invocation queue. Times are time.time() seconds."""

    trigger: Trigger
    first_queued_at: float
    chain_id: int
    chain_depth: int = 1
    attempt: int = 0
    throttle_backoff_s: float = 0.0


@dataclass
class LiveRecords:
    """Observations of the runtime, with times in seconds since the run started."""

    invocations: list[tuple[Any, ...]] = field(default_factory=list)
    concurrency: list[tuple[float, int]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    received: list[tuple[str, float]] = field(default_factory=list)
    published: list[tuple[str, float]] = field(default_factory=list)
    decisions: list[tuple[int, list[Any]]] = field(default_factory=list)
    throttles: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    async_duplicates: int = 0
    pending_events: int = 0


class _Process:
    """One execution environment: a worker process and a thread reading its output lines."""

    def __init__(self, command: list[str], environment: dict[str, str], log_file: Any) -> None:
        self.started_at = time.time()
        self.popen = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log_file,
            env=environment,
            text=True,
            bufsize=1,
            # No parent-death signal here: Linux sends it when the spawning thread ends, which
            # would kill the environment after its first invocation. A worker exits on its own
            # when its standard input closes, which happens when drainsim dies.
            start_new_session=True,
        )
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.idle_since = 0.0
        self.reclaim_after_s = math.inf
        self.state: dict[str, Any] = {}
        threading.Thread(target=self._read, name=f"worker-{self.popen.pid}-reader", daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            try:
                self.lines.put(json.loads(line))
            except json.JSONDecodeError:
                logger.warning("worker %d wrote a line that is not JSON: %.200s", self.popen.pid, line)
        self.lines.put(None)

    def send(self, message: dict[str, Any]) -> bool:
        try:
            assert self.popen.stdin is not None
            self.popen.stdin.write(json.dumps(message) + "\n")
            self.popen.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def kill(self) -> None:
        if self.popen.poll() is None:
            try:
                os.kill(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            logger.error("worker %d did not exit after SIGKILL", self.popen.pid)
        for stream in (self.popen.stdin, self.popen.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


class LocalLambda:
    """One function: its execution environment processes, its asynchronous queue and its limit."""

    def __init__(
        self,
        function_name: str,
        handler: str,
        environment: dict[str, str],
        timeout_s: float,
        memory_mb: int,
        settings: LambdaSettings,
        allow_recursion: bool,
        rngs: dict[str, np.random.Generator],
        run_started_at: float,
        log_path: Path,
        record_decisions: bool = False,
    ) -> None:
        self.function_name = function_name
        self.handler = handler
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.settings = settings
        self.allow_recursion = allow_recursion
        self.run_started_at = run_started_at
        self.record_decisions = record_decisions
        self.records = LiveRecords()

        self._environment = environment
        self._log_file = open(log_path, "a", encoding="utf-8")
        self._rng = rngs["lambda"]
        self._rng_lock = threading.Lock()
        self._idle_reclaim = Sampler(settings.idle_reclaim_s, rngs["idle"])
        self._dispatch_delay = Sampler(settings.async_dispatch_delay_ms, rngs["dispatch"], 0.001)

        self._lock = threading.Condition()
        self._queue: list[tuple[float, int, LiveEvent]] = []
        self._sequence = itertools.count()
        self._invocation_ids = itertools.count()
        self._chain_ids = itertools.count()
        self._chain_activity: Counter[int] = Counter()
        self._running = 0
        self._idle: list[_Process] = []
        self._busy: set[_Process] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._stopped_at: float | None = None
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name=f"{function_name}-dispatcher", daemon=True)

    # -----------------------------------------------------------------------------------------
    # Life cycle

    def start(self) -> None:
        self._dispatcher.start()

    def stop(self) -> None:
        """Stop dispatching, kill every process and wait for the invocation threads."""
        with self._lock:
            self._stopping = True
            self._stopped_at = time.time()
            self.records.pending_events = len(self._queue)
            processes = list(self._idle) + list(self._busy)
            self._idle.clear()
            self._lock.notify_all()
        for process in processes:
            process.kill()
        for thread in list(self._threads):
            thread.join(timeout=10)
        self._dispatcher.join(timeout=10)
        self._log_file.close()

    def _since_start(self, at: float) -> float:
        return at - self.run_started_at

    # -----------------------------------------------------------------------------------------
    # Asynchronous invocation

    def invoke_async(self, event: LiveEvent) -> None:
        """Accept an asynchronous Invoke (HTTP 202) and queue the event for dispatch."""
        with self._rng_lock:
            delay_s = self._dispatch_delay.sample()
            duplicate = self._draw(self.settings.async_duplicate_probability)
        self._enqueue(event, delay_s)
        if duplicate:
            self.records.async_duplicates += 1
            copy = LiveEvent(event.trigger, event.first_queued_at, event.chain_id, event.chain_depth, event.attempt)
            with self._rng_lock:
                copy_delay_s = self._dispatch_delay.sample()
            self._enqueue(copy, copy_delay_s)

    def start_chain(self, trigger: Trigger) -> int:
        chain_id = next(self._chain_ids)
        self.invoke_async(LiveEvent(trigger, time.time(), chain_id))
        return chain_id

    def new_chain_id(self) -> int:
        return next(self._chain_ids)

    def chain_alive(self, chain_id: int) -> bool:
        with self._lock:
            return self._chain_activity[chain_id] > 0

    def invoke_from_trace(self, trace_header: str) -> None:
        """Queue a self-invocation made by a handler, one step deeper in the caller's chain."""
        match = _LINEAGE.search(trace_header or "")
        if match:
            chain_id, depth = int(match.group(1), 16), int(match.group(2))
        else:
            logger.warning("self-invocation without a Lineage in its trace header; starting a new chain")
            chain_id, depth = next(self._chain_ids), 0
        self.invoke_async(LiveEvent(Trigger.SELF, time.time(), chain_id, depth + 1))

    def _draw(self, probability: float) -> bool:
        return probability > 0 and self._rng.random() < probability

    def _enqueue(self, event: LiveEvent, delay_s: float) -> None:
        with self._lock:
            if self._stopping:
                return
            self._chain_activity[event.chain_id] += 1
            heapq.heappush(self._queue, (time.time() + delay_s, next(self._sequence), event))
            self._lock.notify_all()

    def _dispatch_loop(self) -> None:
        while True:
            with self._lock:
                while not self._stopping and (not self._queue or self._queue[0][0] > time.time()):
                    wait_s = self._queue[0][0] - time.time() if self._queue else _HOUSEKEEPING_S
                    self._lock.wait(timeout=min(max(wait_s, 0.001), _HOUSEKEEPING_S))
                    self._reclaim_idle()
                if self._stopping:
                    return
                _, _, event = heapq.heappop(self._queue)
                self._dispatch(event)

    def _dispatch(self, event: LiveEvent) -> None:
        """Start, throttle or drop one event; called with the lock held."""
        now = time.time()
        if not self.allow_recursion and event.chain_depth > limits.RECURSIVE_LOOP_MAX_INVOCATIONS:
            self._drop(event, DropReason.RECURSIVE_LOOP)
            return
        if self._running >= self.settings.concurrency_limit:
            self.records.throttles += 1
            event.throttle_backoff_s = next_throttle_backoff_s(event.throttle_backoff_s)
            if too_old(now, event.throttle_backoff_s, event.first_queued_at, self.settings.max_event_age_s):
                self._drop(event, DropReason.EVENT_AGE)
                return
            heapq.heappush(self._queue, (now + event.throttle_backoff_s, next(self._sequence), event))
            return
        self._running += 1
        self.records.concurrency.append((self._since_start(now), self._running))
        thread = threading.Thread(target=self._invoke, args=(event, now), name=f"{self.function_name}-invocation", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _drop(self, event: LiveEvent, reason: DropReason) -> None:
        self.records.dropped[reason.value] += 1
        self._chain_activity[event.chain_id] -= 1
        logger.info("%s: dropped %s event of chain %d: %s", self.function_name, event.trigger.value, event.chain_id, reason.value)

    def _retry_after_failure(self, event: LiveEvent, now: float) -> None:
        """Queue Lambda's retry of a failed event; called with the lock held."""
        if event.attempt >= self.settings.max_retry_attempts:
            self.records.dropped[DropReason.RETRIES_EXHAUSTED.value] += 1
            return
        delay_s = limits.FUNCTION_ERROR_RETRY_DELAYS_S[event.attempt]
        if too_old(now, delay_s, event.first_queued_at, self.settings.max_event_age_s):
            self.records.dropped[DropReason.EVENT_AGE.value] += 1
            return
        retry = LiveEvent(Trigger.RETRY, event.first_queued_at, event.chain_id, event.chain_depth, event.attempt + 1)
        self._chain_activity[retry.chain_id] += 1
        heapq.heappush(self._queue, (now + delay_s, next(self._sequence), retry))
        self._lock.notify_all()

    # -----------------------------------------------------------------------------------------
    # Invocations

    def _invoke(self, event: LiveEvent, started_at: float) -> None:
        invocation_id = next(self._invocation_ids)
        process, cold, init_s = self._take_process()
        outcome = _Outcome()
        handler_started_at = time.time()
        if process is not None:
            outcome = self._run_handler(process, event, invocation_id, handler_started_at)
        elif self._stopping:
            outcome.reason = EndReason.RUN_ENDED
        else:
            outcome.reason = EndReason.ERROR
            outcome.error = "the execution environment failed to start"
        self._finish(event, invocation_id, started_at, handler_started_at, process, cold, init_s, outcome)

    def _take_process(self) -> tuple[_Process | None, bool, float]:
        with self._lock:
            while self._idle:
                process = self._idle.pop()
                if time.time() - process.idle_since < process.reclaim_after_s and process.popen.poll() is None:
                    self._busy.add(process)
                    return process, False, 0.0
                process.kill()
        command = [sys.executable, "-m", "sim.live.worker", self.handler]
        process = _Process(command, self._environment, self._log_file)
        with self._lock:
            if self._stopping:
                process.kill()
                return None, True, 0.0
            self._busy.add(process)
        try:
            line = process.lines.get(timeout=limits.MAX_INIT_DURATION_S)
        except queue.Empty:
            line = None
        if not line or line.get("type") != "ready":
            if not self._stopping:
                reason = "exited during Init" if line is None else f"did not finish Init within {limits.MAX_INIT_DURATION_S:.0f} s"
                logger.error("%s: execution environment %d %s; see its log", self.function_name, process.popen.pid, reason)
            process.kill()
            with self._lock:
                self._busy.discard(process)
            return None, True, time.time() - process.started_at
        return process, True, time.time() - process.started_at

    def _run_handler(self, process: _Process, event: LiveEvent, invocation_id: int, started_at: float) -> _Outcome:
        outcome = _Outcome()
        deadline = started_at + self.timeout_s
        stop_at = deadline
        with self._rng_lock:
            fails = self._draw(self.settings.failure_probability)
            if fails:
                # As in the simulator: the error strikes at a uniformly random moment of the
                # allowed run time. Here it kills the process, like a crash of the runtime.
                stop_at = started_at + float(self._rng.uniform(0.0, self.timeout_s))
        request_id = f"{invocation_id}-{uuid.uuid4().hex[:8]}"
        trace_id = f"Root=1-{int(started_at):08x}-{uuid.uuid4().hex[:24]};Sampled=0;Lineage={event.chain_id:08x}:{event.chain_depth}"
        request = {
            "request_id": request_id,
            "trace_id": trace_id,
            "deadline_at": deadline,
            "memory_mb": self.memory_mb,
            "record_decisions": self.record_decisions,
            "event": {"trigger": event.trigger.value},
        }
        if not process.send(request):
            outcome.reason = EndReason.ERROR
            outcome.error = "the execution environment's process is gone"
            outcome.process_lost = True
            return outcome

        while True:
            try:
                line = process.lines.get(timeout=max(0.0, stop_at - time.time()))
            except queue.Empty:
                process.kill()
                outcome.process_lost = True
                outcome.reason = EndReason.ERROR if fails and stop_at < deadline else EndReason.TIMEOUT
                return outcome
            if line is None:
                outcome.process_lost = True
                outcome.reason = EndReason.RUN_ENDED if self._stopping else EndReason.ERROR
                outcome.error = "the execution environment's process exited"
                return outcome
            if line.get("request_id") != request_id:
                continue
            if self._collect(line, invocation_id, outcome):
                if fails:
                    outcome.reason = EndReason.ERROR
                return outcome

    def _collect(self, line: dict[str, Any], invocation_id: int, outcome: _Outcome) -> bool:
        """Store one measurement line; return True when it is the invocation's result."""
        kind = line.get("type")
        if kind == "call":
            with self._lock:
                self.records.calls.append(
                    {
                        "api": line["api"],
                        "started_at_s": self._since_start(line["started_at"]),
                        "duration_s": line["duration_s"],
                        "entries": line["entries"],
                        "failed": line["failed"],
                        "invocation_id": invocation_id,
                    }
                )
        elif kind == "received":
            outcome.received += len(line["bodies"])
            with self._lock:
                self.records.received.extend((body, self._since_start(line["at"])) for body in line["bodies"])
        elif kind == "published":
            outcome.published += len(line["bodies"])
            with self._lock:
                self.records.published.extend((body, self._since_start(line["at"])) for body in line["bodies"])
        elif kind == "result":
            if line.get("ok"):
                outcome.reason = EndReason(line["result"]["reason"])
            else:
                outcome.reason = EndReason.ERROR
                outcome.error = line.get("error")
                logger.warning("%s: invocation %d raised %s", self.function_name, invocation_id, outcome.error)
            if line.get("decisions") is not None:
                with self._lock:
                    self.records.decisions.append((invocation_id, line["decisions"]))
            return True
        return False

    def _finish(
        self,
        event: LiveEvent,
        invocation_id: int,
        started_at: float,
        handler_started_at: float,
        process: _Process | None,
        cold: bool,
        init_s: float,
        outcome: _Outcome,
    ) -> None:
        ended_at = time.time()
        with self._lock:
            if self._stopping and outcome.process_lost and self._stopped_at is not None:
                # Killed by the end of the run, not by a failure: recorded like the simulator's
                # invocations still running at the end.
                outcome.reason = EndReason.RUN_ENDED
                ended_at = max(self._stopped_at, handler_started_at)
            self._running -= 1
            self.records.concurrency.append((self._since_start(ended_at), self._running))
            if process is not None:
                self._busy.discard(process)
                if outcome.process_lost or outcome.reason is EndReason.TIMEOUT or self._stopping:
                    process.kill()
                else:
                    process.idle_since = ended_at
                    with self._rng_lock:
                        process.reclaim_after_s = self._idle_reclaim.sample()
                    self._idle.append(process)
            billed_ms = _ceil_ms(ended_at - handler_started_at)
            if cold and self.settings.bill_init:
                billed_ms += _ceil_ms(init_s)
            self.records.invocations.append(
                (
                    invocation_id,
                    event.trigger.value,
                    event.chain_id,
                    event.chain_depth,
                    event.attempt,
                    self._since_start(started_at),
                    self._since_start(ended_at),
                    cold,
                    init_s * 1000.0,
                    outcome.reason.value,
                    billed_ms,
                    outcome.received,
                    outcome.published,
                )
            )
            if outcome.reason in FAILED_REASONS and not self._stopping:
                self._retry_after_failure(event, ended_at)
            self._chain_activity[event.chain_id] -= 1

    def _reclaim_idle(self) -> None:
        """Kill idle processes whose idle time has passed; called with the lock held."""
        now = time.time()
        kept = []
        for process in self._idle:
            if now - process.idle_since >= process.reclaim_after_s:
                process.kill()
            else:
                kept.append(process)
        self._idle = kept


@dataclass
class _Outcome:
    reason: EndReason = EndReason.ERROR
    error: str | None = None
    received: int = 0
    published: int = 0
    process_lost: bool = False


def _ceil_ms(duration_s: float) -> int:
    return max(0, math.ceil(duration_s * 1000.0 - 1e-6))


class InvokeApiServer:
    """HTTP server for Lambda's Invoke API on 127.0.0.1, for the functions of a live run."""

    def __init__(self, functions: dict[str, LocalLambda]) -> None:
        self._functions = functions
        server = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (name fixed by BaseHTTPRequestHandler)
                server._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                logger.debug("invoke API: " + format, *args)

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, name="invoke-api", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        if length:
            request.rfile.read(length)
        match = _INVOKE_PATH.match(request.path.split("?")[0])
        function = self._functions.get(match.group(1).split(":")[-1]) if match else None
        if function is None:
            self._reply(request, 404, {"__type": "ResourceNotFoundException", "message": f"Function not found: {request.path}"})
            return
        if request.headers.get("X-Amz-Invocation-Type") != "Event":
            self._reply(request, 400, {"__type": "InvalidParameterValueException", "message": "only InvocationType=Event is supported by the local runtime"})
            return
        function.invoke_from_trace(request.headers.get("X-Amzn-Trace-Id", ""))
        self._reply(request, 202, None)

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, body: dict[str, Any] | None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(payload)))
        request.send_header("x-amzn-RequestId", uuid.uuid4().hex)
        if body is not None:
            request.send_header("x-amzn-ErrorType", body["__type"])
        request.end_headers()
        request.wfile.write(payload)
