"""The simulated engine: carries out the drain programs' effect requests against the models.

Each request costs the modelled latency of its API call. A receive takes its messages when the
request finds them, and a delete applies when the request starts. A publish is recorded when its
response completes, even if the caller is stopped before it reads that response.
"""

from __future__ import annotations

from typing import Any, Callable, Generator, Sequence

import numpy as np
import simpy

from sim import limits
from sim.distributions import Sampler
from sim.drain.effects import Delete, InvokeSelf, Message, Publish, PublishOutcome, Receive
from sim.lambda_service import AsyncEvent, Invocation, LambdaFunction, Trigger
from sim.scenario import ApiLatencySettings
from sim.sns import SnsApi, SnsTopic
from sim.sqs import SqsApi, SqsQueue

EffectGenerator = Generator[simpy.Event, Any, Any]


def _chunks(messages: Sequence[Message], size: int) -> Sequence[Sequence[Message]]:
    if len(messages) <= size:
        return (messages,)
    return [messages[start : start + size] for start in range(0, len(messages), size)]


class SimulatedEffects:
    """Effect runner for one function, wired to its queue, topic and Lambda service."""

    def __init__(
        self,
        env: simpy.Environment,
        queue: SqsQueue,
        topic: SnsTopic,
        function: LambdaFunction,
        latency: ApiLatencySettings,
        rngs: dict[str, np.random.Generator],
    ) -> None:
        self._env = env
        self._queue = queue
        self._topic = topic
        self._function = function
        self._receive_latency = Sampler(latency.receive_ms, rngs["latency_receive"], 0.001)
        self._publish_latency = Sampler(latency.publish_ms, rngs["latency_publish"], 0.001)
        self._publish_batch_latency = Sampler(latency.publish_batch_ms, rngs["latency_publish_batch"], 0.001)
        self._delete_latency = Sampler(latency.delete_ms, rngs["latency_delete"], 0.001)
        self._delete_batch_latency = Sampler(latency.delete_batch_ms, rngs["latency_delete_batch"], 0.001)
        self._invoke_latency = Sampler(latency.invoke_ms, rngs["latency_invoke"], 0.001)
        self._handlers: dict[type, Callable[[Any, Invocation], EffectGenerator]] = {
            Receive: self._receive,
            Publish: self._publish,
            Delete: self._delete,
            InvokeSelf: self._invoke_self,
        }

    def handler_for(self, effect_type: type) -> Callable[[Any, Invocation], EffectGenerator]:
        """Return the generator function that carries out effects of ``effect_type``."""
        return self._handlers[effect_type]

    def _receive(self, request: Receive, invocation: Invocation) -> EffectGenerator:
        queue = self._queue
        messages = queue.receive_now(request.max_messages, request.visibility_timeout_s, request.wait_s == 0)
        if messages is None:
            waiting = queue.wait_for_messages(request.max_messages, request.visibility_timeout_s, request.wait_s)
            try:
                messages = yield waiting
            except simpy.Interrupt:
                queue.cancel_wait(waiting)
                raise
        if not messages:
            queue.count_empty_receive()

        yield self._env.timeout(self._receive_latency.sample())
        invocation.received += len(messages)
        return messages

    def _publish(self, request: Publish, invocation: Invocation) -> EffectGenerator:
        env = self._env
        published: list[Message] = []
        failed: list[Message] = []
        if request.batch:
            for chunk in _chunks(request.messages, limits.MAX_BATCH_ENTRIES):
                latency_s = self._publish_batch_latency.sample()
                outcome = self._topic.publish(chunk, env.now + latency_s, SnsApi.PUBLISH_BATCH)
                published += outcome.published
                failed += outcome.failed
                yield env.timeout(latency_s)
        else:
            # One Publish per message, all sent at once: the step lasts as long as the slowest.
            slowest_s = 0.0
            for message in request.messages:
                latency_s = self._publish_latency.sample()
                slowest_s = max(slowest_s, latency_s)
                outcome = self._topic.publish([message], env.now + latency_s, SnsApi.PUBLISH)
                published += outcome.published
                failed += outcome.failed
            yield env.timeout(slowest_s)

        invocation.published += len(published)
        return PublishOutcome(published, failed)

    def _delete(self, request: Delete, invocation: Invocation) -> EffectGenerator:
        env = self._env
        queue = self._queue
        if request.batch:
            for chunk in _chunks(request.messages, limits.MAX_BATCH_ENTRIES):
                queue.count_requests(SqsApi.DELETE_MESSAGE_BATCH)
                queue.delete(chunk)
                yield env.timeout(self._delete_batch_latency.sample())
        else:
            queue.count_requests(SqsApi.DELETE_MESSAGE, len(request.messages))
            queue.delete(request.messages)
            slowest_s = max((self._delete_latency.sample() for _ in request.messages), default=0.0)
            yield env.timeout(slowest_s)
        return []

    def _invoke_self(self, request: InvokeSelf, invocation: Invocation) -> EffectGenerator:
        yield self._env.timeout(self._invoke_latency.sample())
        parent = invocation.event
        # The new event continues the same chain of requests, one step deeper, which is what
        # recursive loop detection counts.
        self._function.invoke_async(
            AsyncEvent(Trigger.SELF, self._env.now, parent.chain_id, parent.chain_depth + 1)
        )
        return True
