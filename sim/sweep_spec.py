"""The ``[sweep]`` section of a scenario: which parameters to vary, over which values, how often.

A parameter is named by its dotted path in the scenario file, such as ``designs.timer.period_s``.
Its values are a list, a linear range (start, stop, step) or a logarithmic range (start, stop,
count). The points are the full grid of all parameters, or a random or quasi-random (Sobol)
sample of it. Each point runs ``replications`` times with the same seeds at every point (common
random numbers), so differences between points are not noise between seeds.
"""

from __future__ import annotations

import enum
import itertools
import math
from typing import Annotated, Any, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

# A range may not expand to more values than this: one typo in a step must not make a sweep
# of millions of points.
MAX_AXIS_VALUES = 10_000
MAX_POINTS = 1_000_000

Scalar = Union[bool, int, float, str]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ValuesAxis(_Spec):
    """Explicit values."""

    values: list[Scalar] = Field(min_length=1, max_length=MAX_AXIS_VALUES)

    def expand(self) -> list[Scalar]:
        return list(self.values)


class RangeAxis(_Spec):
    """Values from start to stop (included when a step lands on it) in equal steps."""

    start: float
    stop: float
    step: float = Field(gt=0)

    @model_validator(mode="after")
    def _check(self) -> RangeAxis:
        if self.stop < self.start:
            raise ValueError(f"stop ({self.stop}) must not be below start ({self.start})")
        count = math.floor((self.stop - self.start) / self.step + 1e-9) + 1
        if count > MAX_AXIS_VALUES:
            raise ValueError(f"the range has {count} values; at most {MAX_AXIS_VALUES} are allowed")
        return self

    def expand(self) -> list[Scalar]:
        count = math.floor((self.stop - self.start) / self.step + 1e-9) + 1
        values = [self.start + index * self.step for index in range(count)]
        integral = all(float(v).is_integer() for v in (self.start, self.step))
        return [int(round(value)) if integral else round(value, 12) for value in values]


class LogAxis(_Spec):
    """``count`` values spaced evenly on a logarithmic scale from start to stop, both included."""

    log_start: float = Field(gt=0)
    log_stop: float = Field(gt=0)
    count: int = Field(ge=2, le=MAX_AXIS_VALUES)
    integer: bool = False

    def expand(self) -> list[Scalar]:
        values = np.geomspace(self.log_start, self.log_stop, self.count)
        if self.integer:
            return sorted({int(round(value)) for value in values})
        return [round(float(value), 12) for value in values]


def _axis_form(value: Any) -> str:
    """Tell the form of an axis table from its keys, so errors are reported against that form."""
    if isinstance(value, RangeAxis):
        return "range"
    if isinstance(value, LogAxis):
        return "log"
    if isinstance(value, dict):
        if "log_start" in value or "log_stop" in value or "count" in value:
            return "log"
        if "start" in value or "stop" in value or "step" in value:
            return "range"
    return "values"


Axis = Annotated[
    Union[
        Annotated[ValuesAxis, Tag("values")],
        Annotated[RangeAxis, Tag("range")],
        Annotated[LogAxis, Tag("log")],
    ],
    Discriminator(_axis_form),
]


class SampleKind(str, enum.Enum):
    GRID = "grid"
    RANDOM = "random"
    SOBOL = "sobol"


class SweepSettings(_Spec):
    """Parameters to vary and how many runs each point gets."""

    parameters: dict[str, Axis] = Field(min_length=1)
    replications: int = Field(default=1, ge=1, le=1_000)
    sample: SampleKind = SampleKind.GRID
    # Number of points drawn from the grid for the random and sobol samples.
    points: int | None = Field(default=None, ge=1, le=MAX_POINTS)
    # The design whose metrics ``drainsim tune`` and the sweep plots use; absent means the only
    # design of the scenario.
    design: str | None = None

    @model_validator(mode="after")
    def _check(self) -> SweepSettings:
        if self.sample is not SampleKind.GRID and self.points is None:
            raise ValueError(f"sample = {self.sample.value!r} needs points, the number of points to draw")
        size = math.prod(len(axis.expand()) for axis in self.parameters.values())
        if self.sample is SampleKind.GRID and size > MAX_POINTS:
            raise ValueError(f"the grid has {size:,} points; at most {MAX_POINTS:,} are allowed; use sample = \"random\"")
        return self

    def axes(self) -> dict[str, list[Scalar]]:
        return {name: axis.expand() for name, axis in self.parameters.items()}


def sweep_points(settings: SweepSettings, seed: int) -> list[dict[str, Scalar]]:
    """Return the points of a sweep, each a mapping from dotted parameter path to value.

    The grid lists every combination in order. A random sample draws grid points uniformly
    without repetition. A Sobol sample picks grid points from a scrambled Sobol sequence, which
    covers the grid more evenly than random draws. Both are seeded by the scenario's seed.
    """
    axes = settings.axes()
    names = list(axes)
    if settings.sample is SampleKind.GRID:
        return [dict(zip(names, combination)) for combination in itertools.product(*axes.values())]

    sizes = [len(axes[name]) for name in names]
    total = math.prod(sizes)
    point_count = min(settings.points or total, total)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1_000,)))
    if settings.sample is SampleKind.RANDOM:
        flat = rng.choice(total, size=point_count, replace=False)
        indices = [np.unravel_index(int(position), sizes) for position in flat]
    else:
        indices = _sobol_indices(sizes, point_count, rng)
    return [{name: axes[name][int(index)] for name, index in zip(names, point)} for point in indices]


def _sobol_indices(sizes: list[int], point_count: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """Pick distinct grid points from a scrambled Sobol sequence (scipy.stats.qmc.Sobol)."""
    # Imported here: scipy.stats takes about a second to import, which every command would pay.
    from scipy.stats import qmc

    sampler = qmc.Sobol(d=len(sizes), scramble=True, seed=rng)
    seen: set[tuple[int, ...]] = set()
    picked: list[tuple[int, ...]] = []
    # Sobol points are balanced in blocks of powers of two. Blocks are drawn until enough distinct
    # grid points are found, within a bound for grids smaller than the request.
    for _ in range(32):
        block = sampler.random(max(2, 1 << math.ceil(math.log2(max(point_count, 2)))))
        for coordinates in block:
            point = tuple(min(int(value * size), size - 1) for value, size in zip(coordinates, sizes))
            if point not in seen:
                seen.add(point)
                picked.append(point)
                if len(picked) == point_count:
                    return picked
    return picked


def apply_point(data: dict[str, Any], point: dict[str, Scalar]) -> dict[str, Any]:
    """Return a copy of a scenario document with each dotted path of ``point`` set to its value.

    Raises KeyError naming the path when a table along it does not exist.
    """
    result = _deep_copy(data)
    for path, value in point.items():
        parts = path.split(".")
        table = result
        for position, part in enumerate(parts[:-1]):
            child = table.get(part)
            if not isinstance(child, dict):
                if child is None and position > 0:
                    child = {}
                    table[part] = child
                else:
                    raise KeyError(path)
            table = child
        table[parts[-1]] = value
    return result


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _deep_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_deep_copy(item) for item in value]
    return value
