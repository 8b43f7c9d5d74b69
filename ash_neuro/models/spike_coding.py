"""Spike input codings: how visual token features become the spiking encoder's input currents.

Pure functions in the style of Norse's `functional/encode.py`: features `(rows, in_dim)` ->
currents `(T, rows, in_dim)`; random draws come from the `generator` passed in (None: torch's
global RNG, which a seeded or resumed training run replays), so an export or a deployment
reproduces the exact currents from a seed without forking global RNG state.

    "current"  currents[t] = gain * features at every step t (direct coding);
    "poisson"  currents[t] = gain * s_t, s_t ~ Bernoulli(sigmoid(features)) drawn independently
               per step and element (rate coding); the gradient passes straight through the
               sampling as d/dfeatures of gain * sigmoid(features).

The same descriptions travel with an exported graph (`ash_neuro.nir_export` contract), whose
consumers compute the currents themselves; a test keeps both lists equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from ash_neuro.registry import SPIKE_CODINGS


class CodingFunction(Protocol):
    def __call__(
        self, features: Tensor, time_steps: int, gain: float, generator: torch.Generator | None
    ) -> Tensor: ...


@dataclass(frozen=True)
class SpikeCoding:
    """A coding, whether its currents are the same at every step (then the first Linear of the
    encoder can be applied once instead of T times), and the mean square of its output per
    unit of gain for unit-variance symmetric features (the encoder's initialisation scale)."""

    encode: CodingFunction
    constant_in_time: bool
    unit_power: float


def current_coding(
    features: Tensor, time_steps: int, gain: float, generator: torch.Generator | None = None
) -> Tensor:
    """Direct coding: `(rows, in_dim)` -> `(T, rows, in_dim)`, gain * features at every step."""
    return (gain * features).unsqueeze(0).expand(time_steps, -1, -1)


def poisson_coding(
    features: Tensor, time_steps: int, gain: float, generator: torch.Generator | None = None
) -> Tensor:
    """Rate coding: `(rows, in_dim)` -> `(T, rows, in_dim)` of gain * Bernoulli(sigmoid(x))
    draws, with a straight-through gradient."""
    rate = torch.sigmoid(features).unsqueeze(0).expand(time_steps, -1, -1)
    spikes = torch.bernoulli(rate.detach(), generator=generator)
    return gain * (rate + (spikes - rate).detach())


SPIKE_CODINGS.register("current")(SpikeCoding(current_coding, True, unit_power=1.0))
# Bernoulli spikes of rate sigmoid(x) have mean square E[sigmoid(x)] = 1/2 for symmetric x
SPIKE_CODINGS.register("poisson")(SpikeCoding(poisson_coding, False, unit_power=0.5))
