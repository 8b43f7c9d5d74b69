"""The "concat" adapter: spike rates and ANN tokens joined into one set of visual tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ash_neuro.config import AdapterConfig
from ash_neuro.models.adapter import ConcatAdapter
from ash_neuro.models.outputs import SpikeTrains, TokenGrid, VisualFeatures
from ash_neuro.registry import ADAPTERS

GRID = TokenGrid(start=1, rows=2, cols=2)  # [CLS] + 2x2 patches = 5 tokens


def adapter(dim: int = 8, spike_dim: int | None = 6) -> ConcatAdapter:
    torch.manual_seed(0)
    module = ConcatAdapter(AdapterConfig(), dim, spike_dim)
    with torch.no_grad():  # a norm that is not the identity, so the test sees its weights
        module.norm.weight.uniform_(0.5, 2.0)
        module.norm.bias.uniform_(-1.0, 1.0)
    return module


def numpy_reference(module: ConcatAdapter, ann: np.ndarray, spikes: np.ndarray | None):
    """The adapter from its weights alone: rates = mean over time, Linear = x W^T + b on each
    side, tokens joined along the token axis, LayerNorm (biased variance, eps 1e-5)."""

    def weights(linear):
        return linear.weight.detach().double().numpy(), linear.bias.detach().double().numpy()

    w, b = weights(module.ann_proj)
    parts = [ann @ w.T + b]
    if spikes is not None:
        ws, bs = weights(module.spike_proj)
        parts.append(spikes.mean(axis=0) @ ws.T + bs)
    x = np.concatenate(parts, axis=1)
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    gamma = module.norm.weight.detach().double().numpy()
    beta = module.norm.bias.detach().double().numpy()
    return (x - mean) / np.sqrt(var + 1e-5) * gamma + beta


def test_hybrid_appends_one_token_per_spiking_token_from_rates_over_time():
    module = adapter()
    g = torch.Generator().manual_seed(1)
    ann = torch.randn(2, 5, 8, generator=g)
    spikes = (torch.rand(4, 2, 5, 6, generator=g) < 0.3).float()
    joined, grids = module(VisualFeatures(ann, grid=GRID), SpikeTrains(spikes))
    assert joined.shape == (2, 10, 8)
    expected = numpy_reference(module, ann.double().numpy(), spikes.double().numpy())
    np.testing.assert_allclose(joined.detach().double().numpy(), expected, rtol=1e-5, atol=1e-5)
    # the spike rows are the same token rows: their grid is the ANN grid shifted by n = 5
    assert grids == (GRID, TokenGrid(start=6, rows=2, cols=2))
    # reordering the time steps leaves the rates, hence the tokens, unchanged
    flipped, _ = module(VisualFeatures(ann, grid=GRID), SpikeTrains(spikes.flip(0)))
    torch.testing.assert_close(flipped, joined)


def test_both_sides_share_one_norm_and_width():
    module = ConcatAdapter(AdapterConfig(), 8, 6)  # the norm at its initialisation: gain 1, bias 0
    features = VisualFeatures(torch.randn(2, 5, 8) * 100)
    joined, grids = module(features, SpikeTrains(torch.ones(3, 2, 5, 6)))
    assert grids == ()  # no grid in, none out
    assert torch.allclose(joined.pow(2).mean(-1), torch.ones(2, 10), atol=1e-3)


def test_ann_only_passes_only_the_ann_tokens():
    module = adapter(spike_dim=None)
    assert module.spike_proj is None and module.token_sets == 1
    ann = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(2))
    joined, grids = module(VisualFeatures(ann, grid=GRID))
    expected = numpy_reference(module, ann.double().numpy(), None)
    np.testing.assert_allclose(joined.detach().double().numpy(), expected, rtol=1e-5, atol=1e-5)
    assert grids == (GRID,)
    with pytest.raises(ValueError, match="without a spiking input"):
        module(VisualFeatures(ann), SpikeTrains(torch.ones(3, 2, 5, 6)))


def test_concat_is_the_registered_adapter_and_sizes_heads_before_a_forward_pass():
    assert ADAPTERS.get("concat") is ConcatAdapter
    assert ConcatAdapter(AdapterConfig(), 8, 6).token_sets == 2
