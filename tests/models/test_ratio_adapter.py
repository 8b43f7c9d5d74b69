"""The "ratio" adapter (GSHN): V' = LayerNorm(r * E_SNN + F_GAT) with a learned r."""

from __future__ import annotations

import numpy as np
import torch

from ash_neuro.config import AdapterConfig
from ash_neuro.models.outputs import SpikeTrains, TokenSegments, VisualFeatures
from ash_neuro.models.ratio_adapter import RatioAdapter
from ash_neuro.registry import ADAPTERS


def test_fusion_equals_the_formula_from_the_weights():
    torch.manual_seed(0)
    module = RatioAdapter(AdapterConfig(kind="ratio", ratio_init=0.75), 4, 3)
    with torch.no_grad():
        module.norm.weight.uniform_(0.5, 2.0)
        module.norm.bias.uniform_(-1.0, 1.0)
    continuous = torch.randn(2, 5, 4)  # F_GAT
    spikes = (torch.rand(3, 2, 5, 3) < 0.4).float()  # (T, B, n, spike_dim)
    segments = torch.zeros(2, 4, 4, dtype=torch.long)
    tokens, layouts = module(VisualFeatures(continuous, segments=segments), SpikeTrains(spikes))

    w = module.spike_proj.weight.detach().double().numpy()
    b = module.spike_proj.bias.detach().double().numpy()
    fused = 0.75 * (spikes.double().numpy().mean(axis=0) @ w.T + b) + continuous.double().numpy()
    mean, var = fused.mean(-1, keepdims=True), fused.var(-1, keepdims=True)
    expected = (fused - mean) / np.sqrt(var + 1e-5) * module.norm.weight.detach().numpy()
    expected += module.norm.bias.detach().numpy()
    np.testing.assert_allclose(tokens.detach().numpy(), expected, rtol=1e-5, atol=1e-5)
    assert tokens.shape == (2, 5, 4) and layouts == (TokenSegments(0, 5),)
    assert ADAPTERS.get("ratio") is RatioAdapter and module.token_sets == 1


def test_the_ratio_learns_and_scales_only_the_spiking_branch():
    torch.manual_seed(0)
    module = RatioAdapter(AdapterConfig(kind="ratio", ratio_init=1.0), 4, 3)
    continuous, spikes = torch.randn(1, 2, 4), (torch.rand(2, 1, 2, 3) < 0.5).float()
    module(VisualFeatures(continuous), SpikeTrains(spikes))[0].pow(3).sum().backward()
    assert module.ratio.grad is not None and module.ratio.grad != 0
    with torch.no_grad():
        module.ratio.zero_()  # r = 0: only F_GAT is left
    zero, _ = module(VisualFeatures(continuous), SpikeTrains(spikes))
    alone = torch.nn.functional.layer_norm(continuous, (4,), module.norm.weight, module.norm.bias)
    torch.testing.assert_close(zero, alone)


def test_without_a_spiking_encoder_only_the_continuous_branch_passes():
    module = RatioAdapter(AdapterConfig(kind="ratio"), 4, None)
    continuous = torch.randn(2, 3, 4)
    tokens, layouts = module(VisualFeatures(continuous))
    torch.testing.assert_close(tokens, torch.nn.functional.layer_norm(continuous, (4,)))
    assert layouts == () and module.spike_proj is None
