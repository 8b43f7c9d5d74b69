"""Spike-rate regulariser: keeps each spiking layer's mean firing rate near a target.

Energy on neuromorphic hardware grows with the number of spikes (synaptic operations), so the
rate is held down; holding it *at* a target rather than pushing it to zero keeps the layers
from falling silent, where the surrogate gradient vanishes. The penalty is the squared
relative error, mean over layers: ((rate - target) / target)^2, so that it has the same scale
whatever the target (a rate of twice the target costs 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ash_neuro.losses.base import Loss
from ash_neuro.registry import LOSSES

if TYPE_CHECKING:
    from ash_neuro.objective import ForwardPass


def spike_rate_loss(rates: Mapping[str, Tensor], target_rate: float) -> Tensor:
    """Mean over layers of ((rate - target) / target)^2 for 0-d mean rates {layer: rate}."""
    if not rates:
        raise ValueError("no spiking layer rates to regularise")
    if target_rate <= 0:
        raise ValueError(f"target_rate must be positive, got {target_rate}")
    stacked = torch.stack([r.float() for r in rates.values()])
    return ((stacked - target_rate) / target_rate).pow(2).mean()


@LOSSES.register("spike_rate")
class SpikeRateRegulariser(Loss):
    needs = frozenset({"spike_rates"})

    def __call__(self, forward: ForwardPass) -> Tensor:
        return spike_rate_loss(forward.visual.spike_rates, self.cfg.target_rate)
