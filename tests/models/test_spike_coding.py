"""Spike input codings: direct (current) and rate (poisson) coding, their draws and gradients."""

from __future__ import annotations

import math

import pytest
import torch

from ash_neuro.models.spike_coding import current_coding, poisson_coding
from ash_neuro.registry import SPIKE_CODINGS


def test_current_coding_repeats_gain_times_the_features_at_every_step():
    features = torch.tensor([[1.0, -2.0, 0.5], [0.0, 4.0, -0.25]])
    currents = current_coding(features, time_steps=2, gain=3.0)
    expected = torch.tensor([[3.0, -6.0, 1.5], [0.0, 12.0, -0.75]])
    assert currents.shape == (2, 2, 3)
    assert torch.equal(currents[0], expected) and torch.equal(currents[1], expected)


def test_poisson_draws_are_zero_or_gain_and_follow_the_generator():
    features = torch.linspace(-3, 3, 40).view(4, 10)
    a = poisson_coding(features, 8, 2.5, torch.Generator().manual_seed(11))
    assert a.shape == (8, 4, 10)
    assert set(a.unique().tolist()) == {0.0, 2.5}
    # the same seed, the same draws; another seed, other draws
    assert torch.equal(a, poisson_coding(features, 8, 2.5, torch.Generator().manual_seed(11)))
    assert not torch.equal(a, poisson_coding(features, 8, 2.5, torch.Generator().manual_seed(12)))


def test_poisson_rate_is_the_sigmoid_of_the_features():
    x = torch.tensor([[-2.0, 0.0, 1.0, 3.0]])
    steps = 20000
    currents = poisson_coding(x, steps, 1.0, torch.Generator().manual_seed(0))
    rates = currents.mean(dim=0)[0]
    expected = [1 / (1 + math.exp(2.0)), 0.5, 1 / (1 + math.exp(-1.0)), 1 / (1 + math.exp(-3.0))]
    # binomial standard error at most sqrt(0.25 / 20000) = 0.0035: five of them
    assert rates.tolist() == pytest.approx(expected, abs=0.018)


def test_poisson_gradient_passes_straight_through_as_gain_times_sigmoid_derivative():
    x = torch.tensor([[-2.0, 0.0, 1.5]], requires_grad=True)
    gain, steps = 4.0, 5
    weights = torch.arange(1.0, steps + 1).view(steps, 1, 1)  # a different weight per step
    (poisson_coding(x, steps, gain, torch.Generator().manual_seed(1)) * weights).sum().backward()

    def sigmoid_derivative(v: float) -> float:
        s = 1 / (1 + math.exp(-v))
        return s * (1 - s)

    # d/dx sum_t w_t * gain * sigmoid(x) = gain * sigmoid'(x) * sum_t w_t, whatever was drawn
    expected = [gain * sigmoid_derivative(v) * 15.0 for v in (-2.0, 0.0, 1.5)]
    assert x.grad[0].tolist() == pytest.approx(expected, rel=1e-6)
    assert x.grad[0, 1].item() == pytest.approx(4.0 * 0.25 * 15.0)


def test_registered_codings_and_their_initialisation_facts():
    assert SPIKE_CODINGS.names() == ("current", "poisson")
    current, poisson = SPIKE_CODINGS.get("current"), SPIKE_CODINGS.get("poisson")
    assert current.encode is current_coding and current.constant_in_time
    assert poisson.encode is poisson_coding and not poisson.constant_in_time
    # mean square per unit gain for unit-variance symmetric features: E[x^2] = 1 and
    # E[Bernoulli(sigmoid(x))] = 1/2
    assert (current.unit_power, poisson.unit_power) == (1.0, 0.5)
    x = torch.randn(20000, 1, generator=torch.Generator().manual_seed(2))
    drawn = poisson_coding(x, 4, 1.0, torch.Generator().manual_seed(3))
    assert drawn.pow(2).mean().item() == pytest.approx(0.5, abs=0.01)
