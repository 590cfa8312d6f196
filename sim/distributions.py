"""Random distributions of durations, as scenario settings and as fast samplers.

A scenario gives each distribution in the unit its key names (``receive_ms``, ``delivery_delay_s``).
A number stands for a fixed value. Samplers always return float seconds.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

# Standard normal quantile at 0.99, used to turn a (median, p99) pair into a lognormal sigma.
_Z_99 = 2.3263478740408408

# Samples are drawn this many at a time, so a per-call draw costs a list index, not a numpy call.
_BLOCK_SIZE = 4096


class _StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Fixed(_StrictModel):
    """Always the same value."""

    kind: Literal["fixed"] = "fixed"
    value: float = Field(ge=0)


class Uniform(_StrictModel):
    """Uniform between low and high."""

    kind: Literal["uniform"]
    low: float = Field(ge=0)
    high: float = Field(ge=0)

    @model_validator(mode="after")
    def _check_order(self) -> Uniform:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must not be below low ({self.low})")
        return self


class Lognormal(_StrictModel):
    """Lognormal given by its median and its 99th percentile, the way latency is usually reported."""

    kind: Literal["lognormal"]
    median: float = Field(gt=0)
    p99: float = Field(gt=0)

    @model_validator(mode="after")
    def _check_order(self) -> Lognormal:
        if self.p99 < self.median:
            raise ValueError(f"p99 ({self.p99}) must not be below median ({self.median})")
        return self

    @property
    def sigma(self) -> float:
        return math.log(self.p99 / self.median) / _Z_99


class Exponential(_StrictModel):
    """Exponential with the given mean."""

    kind: Literal["exponential"]
    mean: float = Field(gt=0)


def _number_to_fixed(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"kind": "fixed", "value": value}
    return value


Distribution = Annotated[
    Union[Fixed, Uniform, Lognormal, Exponential],
    Field(discriminator="kind"),
    BeforeValidator(_number_to_fixed),
]


def distribution_mean(dist: Fixed | Uniform | Lognormal | Exponential) -> float:
    """Return the mean in the distribution's own unit."""
    if isinstance(dist, Fixed):
        return dist.value
    if isinstance(dist, Uniform):
        return (dist.low + dist.high) / 2
    if isinstance(dist, Lognormal):
        return dist.median * math.exp(dist.sigma**2 / 2)
    return dist.mean


def distribution_max(dist: Fixed | Uniform | Lognormal | Exponential) -> float:
    """Return the largest value the distribution can take, or infinity."""
    if isinstance(dist, Fixed):
        return dist.value
    if isinstance(dist, Uniform):
        return dist.high
    return math.inf


class Sampler:
    """Draws one distribution's values in seconds from its own random generator.

    ``scale_to_s`` converts the scenario unit to seconds (0.001 for a ``_ms`` key). ``cap_s``
    truncates the tail where AWS enforces a hard limit.
    """

    def __init__(
        self,
        dist: Fixed | Uniform | Lognormal | Exponential,
        rng: np.random.Generator,
        scale_to_s: float = 1.0,
        cap_s: float = math.inf,
    ) -> None:
        self._dist = dist
        self._rng = rng
        self._scale_to_s = scale_to_s
        self._cap_s = cap_s
        self._block: list[float] = []
        self._next = 0
        self._fixed_s: float | None = None
        if isinstance(dist, Fixed):
            self._fixed_s = min(dist.value * scale_to_s, cap_s)

    def sample(self) -> float:
        if self._fixed_s is not None:
            return self._fixed_s
        if self._next >= len(self._block):
            self._block = self._draw_block().tolist()
            self._next = 0
        value = self._block[self._next]
        self._next += 1
        return value

    def _draw_block(self) -> np.ndarray:
        dist = self._dist
        if isinstance(dist, Uniform):
            values = self._rng.uniform(dist.low, dist.high, _BLOCK_SIZE)
        elif isinstance(dist, Lognormal):
            values = self._rng.lognormal(math.log(dist.median), dist.sigma, _BLOCK_SIZE)
        else:
            values = self._rng.exponential(dist.mean, _BLOCK_SIZE)
        return np.minimum(values * self._scale_to_s, self._cap_s)
