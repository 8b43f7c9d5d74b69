"""The spike-rate regulariser."""

from __future__ import annotations

import pytest
import torch

from ash_neuro.losses.spike_rate import spike_rate_loss


def test_zero_at_the_target():
    rates = {"lif1": torch.tensor(0.1), "lif2": torch.tensor(0.1)}
    assert spike_rate_loss(rates, 0.1).item() == pytest.approx(0.0)


def test_relative_squared_error_averaged_over_layers():
    rates = {"lif1": torch.tensor(0.2), "lif2": torch.tensor(0.0)}
    # (0.2/0.1 - 1)^2 = 1 and (0 - 1)^2 = 1
    assert spike_rate_loss(rates, 0.1).item() == pytest.approx(1.0)


def test_gradient_pulls_each_layer_toward_the_target():
    high = torch.tensor(0.3, requires_grad=True)
    low = torch.tensor(0.05, requires_grad=True)
    spike_rate_loss({"lif1": high, "lif2": low}, 0.1).backward()
    assert high.grad > 0 and low.grad < 0


def test_nothing_to_regularise_is_an_error():
    with pytest.raises(ValueError, match="no spiking layer"):
        spike_rate_loss({}, 0.1)
