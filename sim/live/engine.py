"""Run a scenario's designs for real: handlers in local processes against an SQS/SNS endpoint.

Every design gets its own queue, topic and local Lambda function. All of them run at the same
time, on the same arrivals as the simulator and on one wall clock, so a run lasts about the
scenario's duration plus the drain time. On a normal end, an error, Ctrl-C or SIGTERM, every
process, thread, queue and topic the run started or created is stopped or deleted before it
returns. A failed deletion is logged, and SIGKILL skips the cleanup.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from sim import __version__
from sim.distributions import Sampler
from sim.lambda_service import Trigger
from sim.live.endpoint import Endpoint, start_moto
from sim.live.runtime import InvokeApiServer, LiveEvent, LocalLambda
from sim.live.services import (
    check_queue_name_length,
    DepthMonitor,
    Observer,
    Producer,
    Resources,
    create_resources,
    delete_resources,
    group_times,
    make_clients,
    sweep,
    unique_run_tag,
)
from sim.metrics import concurrency_frame, invocation_frame, message_frame, summarize_design
from sim.outcome import DesignOutcome
from sim.pricing import PRICE_REGION, PRICES_AS_OF
from sim.randomness import component_rngs
from sim.runner import RunResult, prepare_arrivals, select_designs
from sim.scenario import RecursiveDesign, Scenario, TimerDesign
from sim.sqs import MessageState
from sim.workload import Arrivals

logger = logging.getLogger(__name__)

HANDLERS = {
    "recursive": "sim.drain.handlers.recursive_handler",
    "timer": "sim.drain.handlers.timer_handler",
}
# Live receives slower than this, with more messages than the scenario's warning depth queued,
# mean the endpoint and not the design sets the pace.
_SLOW_RECEIVE_S = 0.2
_PRODUCER_CALLS_PER_S = 300

ProgressCallback = Callable[[float], None]


@dataclass
class LiveRunResult:
    """A live run's result: the same tables as a simulated run, plus measured API latencies."""

    result: RunResult
    api_latency: pd.DataFrame
    endpoint: str
    decisions: dict[str, list[tuple[int, list[Any]]]] = field(default_factory=dict)


def live_send_plan(arrivals: Arrivals, lead_s: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the live send times and DelaySeconds: each message goes out ``lead_s`` before due.

    A message whose own delay is shorter keeps it. The due times do not change.
    """
    delays = np.minimum(arrivals.delay_s, lead_s).astype(np.int32)
    return arrivals.due_at_s - delays, delays


def _design_environment(design: RecursiveDesign | TimerDesign, resources: Resources, function_name: str) -> dict[str, str]:
    variables = {
        "DRAIN_QUEUE_URL": resources.queue_url,
        "DRAIN_TOPIC_ARN": resources.topic_arn,
        "DRAIN_BATCH_SIZE": str(design.batch_size),
        "DRAIN_WAIT_S": str(design.wait_s),
        "DRAIN_SAFETY_MARGIN_S": str(design.safety_margin_s),
        "DRAIN_PUBLISH_API": design.publish_api.value,
        "DRAIN_DELETE_API": design.delete_api.value,
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
    }
    if design.visibility_timeout_s is not None:
        variables["DRAIN_VISIBILITY_TIMEOUT_S"] = str(design.visibility_timeout_s)
    if isinstance(design, TimerDesign):
        variables["DRAIN_BASELINE_S"] = str(design.baseline_s)
        variables["DRAIN_BASELINE_CLOCK"] = design.baseline_clock.value
    return variables


class _Trigger(threading.Thread):
    """Starts a design's invocations: the scheduled rule's fires, or the recursive chains."""

    def __init__(self, scenario: Scenario, design: RecursiveDesign | TimerDesign, function: LocalLambda, started_at: float, end_at_s: float, stop: threading.Event, rngs: dict[str, np.random.Generator]) -> None:
        super().__init__(name=f"trigger-{function.function_name}", daemon=True)
        self._scenario = scenario
        self._design = design
        self._function = function
        self._started_at = started_at
        self._end_at_s = end_at_s
        self._halt = stop
        self._rng = rngs["eventbridge"]
        self._jitter = Sampler(scenario.eventbridge.jitter_s, rngs["eventbridge_jitter"])
        self._delivery = Sampler(scenario.eventbridge.delivery_delay_s, rngs["eventbridge_delivery"])
        self.fires = 0
        self.duplicate_fires = 0
        self.watchdog_restarts = 0

    def _sleep_until(self, at_s: float) -> bool:
        """Wait until ``at_s`` seconds after the start; return False when the run is stopping."""
        return not self._halt.wait(max(0.0, self._started_at + at_s - time.time()))

    def run(self) -> None:
        if isinstance(self._design, TimerDesign):
            self._run_rule(self._design)
        else:
            self._run_chains(self._design)

    def _run_rule(self, design: TimerDesign) -> None:
        period_index = 0
        while True:
            fire_at_s = period_index * design.period_s + self._scenario.eventbridge.offset_s + self._jitter.sample()
            if fire_at_s >= self._end_at_s or not self._sleep_until(fire_at_s):
                return
            self.fires += 1
            self._deliver()
            probability = self._scenario.eventbridge.duplicate_probability
            if probability > 0 and self._rng.random() < probability:
                self.duplicate_fires += 1
                self._deliver()
            period_index += 1

    def _deliver(self) -> None:
        delay_s = self._delivery.sample()
        function = self._function
        timer = threading.Timer(delay_s, lambda: function.invoke_async(LiveEvent(Trigger.TIMER, time.time(), function.new_chain_id())))
        timer.daemon = True
        timer.start()

    def _run_chains(self, design: RecursiveDesign) -> None:
        if not self._sleep_until(design.start_at_s):
            return
        chains = [self._function.start_chain(Trigger.START) for _ in range(design.chains)]
        if design.watchdog_period_s <= 0:
            return
        next_check_s = design.start_at_s
        while True:
            next_check_s += design.watchdog_period_s
            if next_check_s >= self._end_at_s or not self._sleep_until(next_check_s):
                return
            for position, chain_id in enumerate(chains):
                if not self._function.chain_alive(chain_id):
                    chains[position] = self._function.start_chain(Trigger.WATCHDOG)
                    self.watchdog_restarts += 1


@dataclass
class _DesignRun:
    name: str
    design: RecursiveDesign | TimerDesign
    resources: Resources
    function: LocalLambda
    producer: Producer
    observer: Observer
    depth: DepthMonitor
    trigger: _Trigger
    stop: threading.Event


def run_live(
    scenario: Scenario,
    endpoint: Endpoint | None = None,
    design_names: Sequence[str] | None = None,
    arrivals: Arrivals | None = None,
    progress: ProgressCallback | None = None,
    record_decisions: bool = False,
    work_dir: Path | None = None,
) -> LiveRunResult:
    """Run the selected designs for real and return their results in the simulator's format.

    ``endpoint`` None starts an embedded moto server for the run. ``work_dir`` receives the log
    files of the server and of the execution environments (a temporary folder by default).
    """
    names = select_designs(scenario, design_names)
    if arrivals is None:
        arrivals = prepare_arrivals(scenario, names)
    work_dir = Path(work_dir or tempfile.mkdtemp(prefix="drainsim-live-"))
    work_dir.mkdir(parents=True, exist_ok=True)

    started_endpoint = endpoint is None
    if endpoint is None:
        endpoint = start_moto(work_dir / "moto.log")
    logger.warning("live run of %s uses %s; logs in %s", scenario.name, endpoint.describe(), work_dir)
    try:
        return _run_on_endpoint(scenario, names, arrivals, endpoint, progress, record_decisions, work_dir)
    finally:
        if started_endpoint:
            endpoint.stop()


def _run_on_endpoint(
    scenario: Scenario,
    names: list[str],
    arrivals: Arrivals,
    endpoint: Endpoint,
    progress: ProgressCallback | None,
    record_decisions: bool,
    work_dir: Path,
) -> LiveRunResult:
    for name in names:
        check_queue_name_length(name)
    clients = make_clients(endpoint)
    run_tag = unique_run_tag()
    send_at_s, delays = live_send_plan(arrivals, scenario.live.producer_lead_s)
    _warn_if_producer_too_slow(send_at_s, len(names))

    functions: dict[str, LocalLambda] = {}
    invoke_api = InvokeApiServer(functions)
    invoke_api.start()
    runs: list[_DesignRun] = []
    created: list[Resources] = []
    try:
        # Resources first, so that creating them does not eat into the run's first seconds.
        for name in names:
            created.append(create_resources(clients, run_tag, name, scenario.queue))
        started_at = time.time() + 1.0
        end_at_s = scenario.duration_s + scenario.drain_s
        for name, resources in zip(names, created):
            runs.append(_start_design(scenario, name, resources, endpoint, clients, invoke_api, functions, started_at, end_at_s, send_at_s, delays, arrivals, record_decisions, work_dir))

        ended_at_s = _wait_for_drain(scenario, started_at, progress)

        # Every design stops at the same instant, before any of them is swept.
        for run in runs:
            run.stop.set()
        for run in runs:
            run.function.stop()
        outcomes = [_finish_design(scenario, run, clients, arrivals, send_at_s, ended_at_s) for run in runs]
    finally:
        for run in runs:
            run.stop.set()
            run.function.stop()
        invoke_api.stop()
        for resources in created:
            delete_resources(clients, resources)
    return _assemble(scenario, runs, outcomes, arrivals, endpoint)


def _start_design(
    scenario: Scenario,
    name: str,
    resources: Resources,
    endpoint: Endpoint,
    clients: dict[str, Any],
    invoke_api: InvokeApiServer,
    functions: dict[str, LocalLambda],
    started_at: float,
    end_at_s: float,
    send_at_s: np.ndarray,
    delays: np.ndarray,
    arrivals: Arrivals,
    record_decisions: bool,
    work_dir: Path,
) -> _DesignRun:
    design = scenario.designs[name]
    function_name = f"{resources.prefix}-function"
    environment = dict(os.environ)
    environment.update(endpoint.client_environment())
    environment.update(_design_environment(design, resources, function_name))
    environment["AWS_ENDPOINT_URL_LAMBDA"] = invoke_api.url
    rngs = component_rngs(scenario.seed)
    function = LocalLambda(
        function_name,
        HANDLERS[design.kind],
        environment,
        design.timeout_s,
        design.memory_mb,
        scenario.lambda_,
        getattr(design, "allow_recursion", True),
        rngs,
        started_at,
        work_dir / f"{name}.log",
        record_decisions,
    )
    functions[function_name] = function

    stop = threading.Event()
    run = _DesignRun(
        name=name,
        design=design,
        resources=resources,
        function=function,
        producer=Producer(clients["sqs"], resources.queue_url, send_at_s, delays, arrivals.due_at_s, started_at, stop),
        observer=Observer(clients["sqs"], resources.observer_url, started_at, stop),
        depth=DepthMonitor(clients["sqs"], resources.queue_url, started_at, stop),
        trigger=_Trigger(scenario, design, function, started_at, end_at_s, stop, rngs),
        stop=stop,
    )

    function.start()
    for thread in (run.producer, run.observer, run.depth, run.trigger):
        thread.start()
    return run


def _warn_if_producer_too_slow(send_at_s: np.ndarray, design_count: int) -> None:
    # One boto3 client thread makes about 400 simple calls per second against moto 5.2 (measured
    # on 2 cores). Each design's producer is one thread, and batching helps only same-instant sends.
    if len(send_at_s) == 0:
        return
    per_second = np.bincount(np.floor(send_at_s).astype(np.int64).clip(min=0))
    peak = int(per_second.max())
    if peak * design_count > _PRODUCER_CALLS_PER_S:
        logger.warning(
            "the workload sends up to %d messages in one second to each of %d queues; the producer "
            "may fall behind its send times above about %d calls per second",
            peak,
            design_count,
            _PRODUCER_CALLS_PER_S,
        )


def _wait_for_drain(scenario: Scenario, started_at: float, progress: ProgressCallback | None) -> float:
    """Wait for the workload and the drain time to pass, as the simulator does, for like-for-like costs."""
    end_at_s = scenario.duration_s + scenario.drain_s
    while True:
        now_s = time.time() - started_at
        if progress is not None:
            progress(min(max(now_s, 0.0), end_at_s))
        if now_s >= end_at_s:
            return now_s
        time.sleep(min(0.25, end_at_s - now_s + 0.001))


def _finish_design(scenario: Scenario, run: _DesignRun, clients: dict[str, Any], arrivals: Arrivals, send_at_s: np.ndarray, ended_at_s: float) -> DesignOutcome:
    for thread in (run.producer, run.trigger, run.depth):
        thread.join(timeout=10)
    # Deliveries published just before the stop may still be on their way to the observer queue.
    run.observer.join(timeout=10)
    while run.observer.poll_once(0):
        pass
    queued = sweep(clients["sqs"], run.resources.queue_url, len(arrivals))
    in_dlq = sweep(clients["sqs"], run.resources.dlq_url, len(arrivals)) if run.resources.dlq_url else set()
    if run.producer.error is not None or run.producer.sent < len(arrivals):
        logger.error(
            "design %s: the producer sent %d of %d messages (%s); the others are reported as queued",
            run.name,
            run.producer.sent,
            len(arrivals),
            run.producer.error or "stopped before their send time",
        )
    return _outcome(scenario, run, arrivals, send_at_s, ended_at_s, queued, in_dlq)


def _outcome(scenario: Scenario, run: _DesignRun, arrivals: Arrivals, send_at_s: np.ndarray, ended_at_s: float, queued: set[int], in_dlq: set[int]) -> DesignOutcome:
    count = len(arrivals)
    records = run.function.records
    first_receive, receives = group_times(records.received)
    first_publish, publishes = group_times(records.published)

    first_receive_at_s = np.full(count, np.nan)
    receive_count = np.zeros(count, dtype=np.int32)
    first_publish_at_s = np.full(count, np.nan)
    publish_count = np.zeros(count, dtype=np.int32)
    for message_id, at_s in first_receive.items():
        first_receive_at_s[message_id] = at_s
        receive_count[message_id] = receives[message_id]
    # The handlers' own publish times come first. A publish whose handler was killed before it
    # reported is known only from the observer's delivery time, which is a little later.
    for message_id, deliveries in run.observer.deliveries.items():
        publish_count[message_id] = max(deliveries, publishes.get(message_id, 0))
        first_publish_at_s[message_id] = first_publish.get(message_id, run.observer.first_delivery_s[message_id])
    for message_id, at_s in first_publish.items():
        if np.isnan(first_publish_at_s[message_id]):
            first_publish_at_s[message_id] = at_s
            publish_count[message_id] = publishes[message_id]

    # Unpublished messages: in flight unless the final sweep found them visible or in the
    # dead-letter queue, or their retention (from the live send time) ran out. A message the
    # producer never sent counts as queued, and the run logs an error.
    states = np.full(count, int(MessageState.IN_FLIGHT), dtype=np.int8)
    states[send_at_s + scenario.queue.retention_s <= ended_at_s] = int(MessageState.EXPIRED)
    states[sorted(run.producer.unsent_ids(count))] = int(MessageState.QUEUED)
    states[sorted(queued)] = int(MessageState.QUEUED)
    states[sorted(in_dlq)] = int(MessageState.DLQ)
    states[publish_count > 0] = int(MessageState.DELETED)

    sqs_requests: Counter[str] = Counter(run.producer.log.counts)
    sns_requests: Counter[str] = Counter()
    for call in records.calls:
        api = call["api"]
        if api in ("Publish", "PublishBatch"):
            sns_requests[api] += 1
        elif api != "Invoke":
            sqs_requests[api] += 1
            if api == "ReceiveMessage" and call["entries"] == 0:
                sqs_requests["ReceiveMessage_empty"] += 1

    return DesignOutcome(
        name=run.name,
        design=run.design,
        end_at_s=ended_at_s,
        first_receive_at_s=first_receive_at_s,
        receive_count=receive_count,
        first_publish_at_s=first_publish_at_s,
        publish_count=publish_count,
        final_states=states,
        invocations=sorted(records.invocations, key=lambda row: row[6]),
        concurrency=sorted(records.concurrency),
        sqs_requests=sqs_requests,
        sns_requests=sns_requests,
        throttles=records.throttles,
        dropped_events=records.dropped,
        async_duplicates=records.async_duplicates,
        pending_events=records.pending_events,
        timer_fires=run.trigger.fires,
        duplicate_fires=run.trigger.duplicate_fires,
        watchdog_restarts=run.trigger.watchdog_restarts,
        dlq_moves=len(in_dlq),
    )


def _api_latency(scenario: Scenario, run: _DesignRun) -> pd.DataFrame:
    handler_calls = pd.DataFrame(run.function.records.calls)
    producer_calls = pd.DataFrame(run.producer.log.calls)
    if not handler_calls.empty:
        handler_calls["source"] = "handler"
    if not producer_calls.empty:
        producer_calls["source"] = "producer"
    calls = pd.concat([frame for frame in (handler_calls, producer_calls) if not frame.empty], ignore_index=True) if not (handler_calls.empty and producer_calls.empty) else pd.DataFrame(columns=["api", "started_at_s", "duration_s", "entries", "failed", "invocation_id", "source"])
    calls = calls.sort_values("started_at_s", kind="stable").reset_index(drop=True)
    depth = pd.DataFrame(run.depth.samples, columns=["at_s", "queue_visible", "queue_in_flight", "queue_delayed"])
    if depth.empty or calls.empty:
        for column in ("queue_visible", "queue_in_flight", "queue_delayed"):
            calls[column] = pd.array([pd.NA] * len(calls), dtype="Int64")
    else:
        calls = pd.merge_asof(calls, depth.astype({"at_s": "float64"}), left_on="started_at_s", right_on="at_s", direction="backward").drop(columns=["at_s"])
        for column in ("queue_visible", "queue_in_flight", "queue_delayed"):
            calls[column] = calls[column].astype("Int64")
    calls.insert(0, "design", run.name)
    _warn_if_endpoint_bound(scenario, run.name, calls)
    return calls[["design", "source", "api", "started_at_s", "duration_s", "entries", "failed", "invocation_id", "queue_visible", "queue_in_flight", "queue_delayed"]]


def _warn_if_endpoint_bound(scenario: Scenario, name: str, calls: pd.DataFrame) -> None:
    receives = calls[calls["api"] == "ReceiveMessage"]
    if receives.empty:
        return
    total = receives["queue_visible"].fillna(0) + receives["queue_in_flight"].fillna(0) + receives["queue_delayed"].fillna(0)
    deep = receives[total.astype("float64") > scenario.live.queue_depth_warning]
    if not deep.empty and float(deep["duration_s"].median()) > _SLOW_RECEIVE_S:
        logger.warning(
            "design %s: with more than %d messages queued, ReceiveMessage took %.2f s (median); "
            "the endpoint, not the design, limits the drain",
            name,
            scenario.live.queue_depth_warning,
            float(deep["duration_s"].median()),
        )


def _assemble(scenario: Scenario, runs: list[_DesignRun], outcomes: list[DesignOutcome], arrivals: Arrivals, endpoint: Endpoint) -> LiveRunResult:
    summaries = {outcome.name: summarize_design(outcome, arrivals, scenario.lambda_.architecture) for outcome in outcomes}
    end_at_s = max((outcome.end_at_s for outcome in outcomes), default=0.0)
    summary = {
        "scenario": scenario.name,
        "description": scenario.description,
        "seed": scenario.seed,
        "version": __version__,
        "engine": "live",
        "endpoint": {"kind": endpoint.kind.value, "url": endpoint.url, "region": endpoint.region},
        "duration_s": scenario.duration_s,
        "drain_s": scenario.drain_s,
        "end_at_s": round(end_at_s, 3),
        "messages": len(arrivals),
        "prices": {"as_of": PRICES_AS_OF, "region": PRICE_REGION},
        "warnings": scenario.warnings(),
        "designs": summaries,
    }
    result = RunResult(
        scenario=scenario,
        summary=summary,
        messages=pd.concat([message_frame(outcome, arrivals) for outcome in outcomes], ignore_index=True),
        invocations=pd.concat([invocation_frame(outcome) for outcome in outcomes], ignore_index=True),
        concurrency=pd.concat([concurrency_frame(outcome) for outcome in outcomes], ignore_index=True),
    )
    latency = pd.concat([_api_latency(scenario, run) for run in runs], ignore_index=True)
    decisions = {run.name: run.function.records.decisions for run in runs}
    return LiveRunResult(result, latency, endpoint.describe(), decisions)


__all__ = ["HANDLERS", "LiveRunResult", "live_send_plan", "run_live"]
