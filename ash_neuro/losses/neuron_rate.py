"""Per-neuron rate regulariser: keeps every spiking neuron out of the two states that carry no
information and still cost energy on a chip, silent (never fires: an update every step for
nothing) and saturated (fires at every step: a spike and its synaptic ops every step).

The layer-mean regulariser (`spike_rate.py`) can sit at its target while some neurons never
fire and others always do; this one looks at each neuron's own rate r over the batch's real
rows and steps, and penalises it only outside the band [low, high] (`loss.neuron_rate_low`,
`loss.neuron_rate_high`), each side relative to its margin so that a silent neuron and a
saturated one cost 1 each: ((low - r)+ / low)^2 + ((r - high)+ / (1 - high))^2, mean over the
neurons of every layer. Off by default (`loss.weights.neuron_rate=0`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ash_neuro.losses.base import Loss
from ash_neuro.models.semantic_abstract_encoder import neuron_rates
from ash_neuro.registry import LOSSES

if TYPE_CHECKING:
    from ash_neuro.objective import ForwardPass


def neuron_rate_loss(rates: Mapping[str, Tensor], low: float, high: float) -> Tensor:
    """Mean over every layer's neurons of the band penalty above, for per-neuron rates
    {layer: `(width,)`} in [0, 1]."""
    if not rates:
        raise ValueError("no spiking layer rates to regularise")
    if not 0 < low < high < 1:
        raise ValueError(f"need 0 < low < high < 1, got low={low}, high={high}")
    r = torch.cat([rate.float().reshape(-1) for rate in rates.values()])
    below = torch.relu(low - r) / low
    above = torch.relu(r - high) / (1 - high)
    return (below.pow(2) + above.pow(2)).mean()


@LOSSES.register("neuron_rate")
class NeuronRateRegulariser(Loss):
    needs = frozenset({"spike_rates"})

    def __call__(self, forward: ForwardPass) -> Tensor:
        spiking = forward.visual.spiking
        mask = forward.visual.features.mask
        rates = {name: neuron_rates(spikes, mask) for name, spikes in spiking.layers.items()}
        return neuron_rate_loss(rates, self.cfg.neuron_rate_low, self.cfg.neuron_rate_high)
