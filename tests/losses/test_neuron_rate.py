"""The per-neuron rate regulariser and the silent/saturated shares, on hand-made rates."""

from __future__ import annotations

import pytest
import torch

from ash_neuro.losses.neuron_rate import neuron_rate_loss
from ash_neuro.models.semantic_abstract_encoder import neuron_rates, silent_and_saturated


def test_only_neurons_outside_the_band_cost():
    # low 0.1, high 0.6: 0.0 (silent) costs 1, 1.0 (saturated) costs 1, 0.05 costs 0.25,
    # 0.8 costs (0.2 / 0.4)^2 = 0.25, 0.3 costs nothing; mean over the 6 neurons
    rates = {"lif1": torch.tensor([0.0, 1.0, 0.3]), "lif2": torch.tensor([0.05, 0.8, 0.3])}
    assert neuron_rate_loss(rates, 0.1, 0.6).item() == pytest.approx((1 + 1 + 0.25 + 0.25) / 6)
    inside = {"lif1": torch.tensor([0.1, 0.35, 0.6])}
    assert neuron_rate_loss(inside, 0.1, 0.6).item() == 0


def test_gradient_wakes_silent_and_calms_saturated_neurons():
    rates = torch.tensor([0.0, 1.0, 0.3], requires_grad=True)
    neuron_rate_loss({"lif1": rates}, 0.1, 0.6).backward()
    assert rates.grad[0] < 0 and rates.grad[1] > 0 and rates.grad[2] == 0


def test_a_bad_band_is_an_error():
    with pytest.raises(ValueError, match="0 < low < high < 1"):
        neuron_rate_loss({"lif1": torch.tensor([0.5])}, 0.6, 0.1)
    with pytest.raises(ValueError, match="no spiking layer"):
        neuron_rate_loss({}, 0.1, 0.6)


def test_per_neuron_rates_and_shares_over_the_real_rows():
    spikes = torch.zeros(2, 3, 4)  # T = 2 steps, 3 rows, 4 neurons
    spikes[:, :, 1] = 1  # neuron 1 fires at every step of every row: saturated
    spikes[0, 0, 2] = 1  # neuron 2 fires once (row 0)
    spikes[:, 2, 3] = 1  # neuron 3 fires only on row 2, which is padding below
    assert neuron_rates(spikes).tolist() == pytest.approx([0, 1, 1 / 6, 2 / 6])
    mask = torch.tensor([True, True, False])
    assert neuron_rates(spikes, mask).tolist() == pytest.approx([0, 1, 1 / 4, 0])
    assert silent_and_saturated(spikes) == (0.25, 0.25)
    assert silent_and_saturated(spikes, mask) == (0.5, 0.25)  # neuron 3 is silent on real rows
