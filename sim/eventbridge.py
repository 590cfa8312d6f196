"""The EventBridge scheduled rule that starts the timer design.

Rules modelled, from the Amazon EventBridge User Guide ("Creating a rule that runs on a
schedule", "Troubleshooting"). A rule fires once per period at some second of its minute, not on
second 0. The target can start several seconds later. In rare cases a rule fires twice for one
scheduled time. A Lambda target is invoked asynchronously.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Generator

import numpy as np
import simpy

from sim.distributions import Sampler
from sim.scenario import EventBridgeSettings

logger = logging.getLogger(__name__)


class ScheduledRule:
    """Fires every ``period_s`` at ``offset_s`` plus jitter and calls ``target`` after a delivery delay."""

    def __init__(
        self,
        env: simpy.Environment,
        period_s: float,
        settings: EventBridgeSettings,
        target: Callable[[], None],
        rngs: dict[str, np.random.Generator],
    ) -> None:
        self.env = env
        self.period_s = period_s
        self.settings = settings
        self.fires = 0
        self.duplicate_fires = 0
        self._target = target
        self._rng = rngs["eventbridge"]
        self._jitter = Sampler(settings.jitter_s, rngs["eventbridge_jitter"])
        self._delivery_delay = Sampler(settings.delivery_delay_s, rngs["eventbridge_delivery"])

    def run(self, until_s: float) -> Generator[simpy.Event, Any, None]:
        """Fire at every scheduled time before ``until_s``."""
        period_index = 0
        while True:
            fire_at_s = period_index * self.period_s + self.settings.offset_s + self._jitter.sample()
            if fire_at_s >= until_s:
                return
            yield self.env.timeout(max(0.0, fire_at_s - self.env.now))
            self._fire()
            period_index += 1

    def _fire(self) -> None:
        self.fires += 1
        self._deliver()
        probability = self.settings.duplicate_probability
        if probability > 0 and self._rng.random() < probability:
            self.duplicate_fires += 1
            logger.debug("duplicate fire at %.3f s", self.env.now)
            self._deliver()

    def _deliver(self) -> None:
        delivery = self.env.timeout(self._delivery_delay.sample())
        delivery.callbacks.append(lambda _event: self._target())
