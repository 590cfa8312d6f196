"""The SNS topic the drained messages are published to.

Publish takes one message per request and PublishBatch up to 10, each entry succeeding or
failing on its own (Amazon SNS Developer Guide, "Amazon SNS message batching"). The topic
records when each message was first published and how often.
"""

from __future__ import annotations

import enum
import logging
import math
from collections import Counter

import numpy as np

from sim.drain.effects import Message, PublishOutcome

logger = logging.getLogger(__name__)


class SnsApi(str, enum.Enum):
    PUBLISH = "Publish"
    PUBLISH_BATCH = "PublishBatch"


class SnsTopic:
    """Counts requests and records first-publish times for every message of a run."""

    def __init__(
        self,
        message_count: int,
        failure_probability: float,
        rng: np.random.Generator,
        end_at_s: float = math.inf,
    ) -> None:
        # A request completing after the simulation stops would never be observed.
        self._end_at_s = end_at_s
        # Python lists: faster than numpy arrays for the one-message updates of each publish.
        self._first_publish_at_s = [math.nan] * message_count
        self._publish_count = [0] * message_count
        self.requests: Counter[str] = Counter()
        self._failure_probability = failure_probability
        self._rng = rng

    def publish(self, messages: list[Message], at_s: float, api: SnsApi) -> PublishOutcome:
        """Publish ``messages`` in one request of ``api`` accepted at ``at_s``."""
        self.requests[api] += 1
        failed: list[Message] = []
        if self._failure_probability > 0:
            draws = self._rng.random(len(messages))
            failed = [message for message, draw in zip(messages, draws) if draw < self._failure_probability]
            published = [message for message, draw in zip(messages, draws) if draw >= self._failure_probability]
        else:
            published = list(messages)
        if at_s > self._end_at_s:
            return PublishOutcome(published, failed)

        first_publish = self._first_publish_at_s
        publish_count = self._publish_count
        for index, _handle, _body in published:
            # Concurrent Publish calls can complete out of order, so keep the earliest.
            if publish_count[index] == 0 or at_s < first_publish[index]:
                first_publish[index] = at_s
            publish_count[index] += 1
        if failed:
            logger.debug("%s failed for %d of %d messages at %.3f s", api.value, len(failed), len(messages), at_s)
        return PublishOutcome(published, failed)

    def first_publish_at_s_array(self) -> np.ndarray:
        return np.array(self._first_publish_at_s, dtype=np.float64)

    def publish_count_array(self) -> np.ndarray:
        return np.array(self._publish_count, dtype=np.int32)
