"""Assemble the models for one design of a scenario and run them on simulated time."""

from __future__ import annotations

import logging
import math
from typing import Any, Callable, Generator

import simpy

from sim.drain.params import PollParams, RecursiveParams, TimerParams
from sim.drain.recursive import recursive_drain
from sim.drain.timer import timer_drain
from sim.engine import SimulatedEffects
from sim.eventbridge import ScheduledRule
from sim.lambda_service import AsyncEvent, LambdaFunction, ProgramFactory, Trigger
from sim.outcome import DesignOutcome
from sim.randomness import component_rngs
from sim.scenario import (
    BaselineClock,
    DeleteApi,
    PublishApi,
    RecursiveDesign,
    Scenario,
    TimerDesign,
)
from sim.sns import SnsTopic
from sim.sqs import SqsApi, SqsQueue
from sim.workload import Arrivals

logger = logging.getLogger(__name__)

# The progress callback is called this many times per design, at evenly spaced simulated times.
PROGRESS_STEPS = 200

ProgressCallback = Callable[[float], None]


def poll_params(design: RecursiveDesign | TimerDesign) -> PollParams:
    """Translate a design's settings into the drain programs' plain parameters."""
    return PollParams(
        batch_size=design.batch_size,
        wait_s=design.wait_s,
        visibility_timeout_s=design.visibility_timeout_s,
        safety_margin_s=design.safety_margin_s,
        publish_batch=design.publish_api is PublishApi.BATCH,
        delete_batch=design.delete_api is DeleteApi.BATCH,
    )


def program_factory(design: RecursiveDesign | TimerDesign) -> ProgramFactory:
    """Return a function that starts the design's drain program for one invocation."""
    if isinstance(design, TimerDesign):
        timer_params = TimerParams(
            poll=poll_params(design),
            baseline_s=design.baseline_s,
            baseline_from_environment=design.baseline_clock is BaselineClock.ENVIRONMENT,
        )
        return lambda context, state: timer_drain(timer_params, context, state)
    recursive_params = RecursiveParams(poll=poll_params(design))
    return lambda context, state: recursive_drain(recursive_params, context, state)


def run_end_at_s(scenario: Scenario) -> float:
    """Return when the simulation stops: the due window plus the drain time."""
    return scenario.duration_s + scenario.drain_s


def simulate_design(
    scenario: Scenario,
    design_name: str,
    arrivals: Arrivals,
    progress: ProgressCallback | None = None,
) -> DesignOutcome:
    """Run one design of ``scenario`` on ``arrivals`` and return the final state of its models."""
    design = scenario.designs[design_name]
    rngs = component_rngs(scenario.seed)
    end_at_s = run_end_at_s(scenario)
    env = simpy.Environment()

    queue = SqsQueue(env, arrivals, scenario.queue, rngs["sqs"])
    _count_producer_requests(queue, len(arrivals), scenario.queue.producer_batch_size)
    topic = SnsTopic(len(arrivals), scenario.sns.failure_probability, rngs["sns"], end_at_s)
    function = LambdaFunction(
        env,
        scenario.lambda_,
        design.timeout_s,
        allow_recursion=getattr(design, "allow_recursion", True),
        program_factory=program_factory(design),
        rngs=rngs,
    )
    effects = SimulatedEffects(env, queue, topic, function, scenario.api_latency, rngs)
    function.effect_handlers = effects.handler_for

    rule: ScheduledRule | None = None
    watchdog = _Watchdog()
    if isinstance(design, TimerDesign):
        rule = ScheduledRule(
            env,
            design.period_s,
            scenario.eventbridge,
            lambda: function.invoke_async(AsyncEvent(Trigger.TIMER, env.now)),
            rngs,
        )
        env.process(rule.run(end_at_s))
    else:
        env.process(watchdog.run(env, function, design))

    logger.info("simulating design %s on %d messages until %.0f s", design_name, len(arrivals), end_at_s)
    _run_with_progress(env, end_at_s, progress)
    function.finish_run(end_at_s)

    records = function.records
    return DesignOutcome(
        name=design_name,
        design=design,
        end_at_s=end_at_s,
        first_receive_at_s=queue.first_receive_at_s_array(),
        receive_count=queue.receive_count_array(),
        first_publish_at_s=topic.first_publish_at_s_array(),
        publish_count=topic.publish_count_array(),
        final_states=queue.final_states(end_at_s),
        invocations=records.invocations,
        concurrency=records.concurrency,
        sqs_requests=queue.requests,
        sns_requests=topic.requests,
        throttles=records.throttles,
        dropped_events=records.dropped,
        async_duplicates=records.async_duplicates,
        pending_events=records.pending_events,
        timer_fires=rule.fires if rule else 0,
        duplicate_fires=rule.duplicate_fires if rule else 0,
        watchdog_restarts=watchdog.restarts,
        dlq_moves=queue.dlq_moves,
    )


def _count_producer_requests(queue: SqsQueue, message_count: int, batch_size: int) -> None:
    # The scheduler's sends are the same for every design, so they are counted, not simulated.
    if batch_size == 1:
        queue.count_requests(SqsApi.SEND_MESSAGE, message_count)
    else:
        queue.count_requests(SqsApi.SEND_MESSAGE_BATCH, math.ceil(message_count / batch_size))


def _run_with_progress(env: simpy.Environment, end_at_s: float, progress: ProgressCallback | None) -> None:
    if progress is None:
        env.run(until=end_at_s)
        return
    for step in range(1, PROGRESS_STEPS + 1):
        until_s = end_at_s * step / PROGRESS_STEPS
        if until_s > env.now:
            env.run(until=until_s)
        progress(until_s)


class _Watchdog:
    """Starts the recursive chains and, when configured, restarts dead ones on a timer.

    Production recursive drainers pair the chain with a scheduled watchdog because one unhandled
    error or dropped event ends a chain for good.
    """

    def __init__(self) -> None:
        self.restarts = 0

    def run(
        self, env: simpy.Environment, function: LambdaFunction, design: RecursiveDesign
    ) -> Generator[simpy.Event, Any, None]:
        if design.start_at_s > 0:
            yield env.timeout(design.start_at_s)
        chains = [function.start_chain(Trigger.START) for _ in range(design.chains)]
        if design.watchdog_period_s <= 0:
            return
        while True:
            yield env.timeout(design.watchdog_period_s)
            for position, chain_id in enumerate(chains):
                if not function.chain_alive(chain_id):
                    chains[position] = function.start_chain(Trigger.WATCHDOG)
                    self.restarts += 1
                    logger.debug("watchdog restarted chain %d as %d", chain_id, chains[position])
