"""The spiking semantic abstract encoder: NIR-expressible layers, the tensor contract, spikes,
surrogate gradients."""

from __future__ import annotations

import pytest
import torch
from norse.torch import LIFBoxCell, SequentialState

from ash_neuro.config import SpikingConfig, VisualConfig
from ash_neuro.models.semantic_abstract_encoder import SemanticAbstractEncoder
from ash_neuro.models.visual_concrete_encoder import VisualConcreteEncoder

CFG = SpikingConfig(time_steps=4, hidden_dims=[24, 20], out_dim=12)


def tokens(batch=3, n=5, dim=16, seed=0) -> torch.Tensor:
    x = torch.randn(batch, n, dim, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.layer_norm(x, (dim,))


def test_network_holds_only_linear_and_lifbox_layers_alternating():
    encoder = SemanticAbstractEncoder(CFG, in_dim=16)
    layers = list(encoder.network)
    assert isinstance(encoder.network, SequentialState)
    assert [type(m) for m in layers] == [torch.nn.Linear, LIFBoxCell] * 3
    widths = [(m.in_features, m.out_features) for m in layers if isinstance(m, torch.nn.Linear)]
    assert widths == [(16, 24), (24, 20), (20, 12)]
    assert encoder.layer_names == ["lif1", "lif2", "lif3"]


def test_lif_parameters_come_from_the_config():
    cfg = SpikingConfig(tau_mem_inv=50.0, v_th=0.5, dt=2e-3, surrogate_alpha=30.0)
    cell = SemanticAbstractEncoder(cfg, in_dim=8).network[1]
    assert float(cell.p.tau_mem_inv) == 50.0 and float(cell.p.v_th) == 0.5
    assert float(cell.p.v_leak) == 0.0 and float(cell.p.v_reset) == 0.0
    assert cell.p.method == "super" and float(cell.p.alpha) == 30.0 and cell.dt == 2e-3


@pytest.mark.parametrize("encoding", ["current", "poisson"])
def test_spikes_are_binary_float32_time_first_and_every_layer_fires(encoding):
    torch.manual_seed(0)
    cfg = SpikingConfig(time_steps=4, hidden_dims=[24, 20], out_dim=12, encoding=encoding)
    encoder = SemanticAbstractEncoder(cfg, in_dim=16)
    out = encoder(tokens(batch=8, n=6))
    spikes, rates = out.spikes, out.rates
    assert spikes.shape == (4, 8, 6, 12) and spikes.dtype == torch.float32
    assert [tuple(s.shape) for s in out.layers.values()] == [(4, 48, 24), (4, 48, 20), (4, 48, 12)]
    assert set(spikes.unique().tolist()) == {0.0, 1.0}
    assert list(rates) == ["lif1", "lif2", "lif3"]
    # the initial scaling keeps every layer active (a silent layer has no surrogate gradient)
    assert all(0.02 < r.item() < 0.6 for r in rates.values()), rates
    assert rates["lif3"].item() == pytest.approx(spikes.mean().item())
    for name, layer in out.layers.items():
        assert rates[name].item() == pytest.approx(layer.mean().item())


def test_current_encoding_repeats_the_scaled_features_every_step():
    encoder = SemanticAbstractEncoder(CFG, in_dim=16)
    x = tokens()
    currents = encoder.encode_input(x)
    assert currents.shape == (4, 3 * 5, 16)
    for step in currents:
        torch.testing.assert_close(step, CFG.input_gain * x.reshape(15, 16))


def test_poisson_encoding_is_rate_coded_with_straight_through_gradient():
    cfg = SpikingConfig(time_steps=400, hidden_dims=[8], out_dim=4, encoding="poisson")
    encoder = SemanticAbstractEncoder(cfg, in_dim=3)
    x = torch.tensor([[[-2.0, 0.0, 3.0]]], requires_grad=True)
    currents = encoder.encode_input(x, torch.Generator().manual_seed(0))
    assert set((currents / cfg.input_gain).unique().tolist()) == {0.0, 1.0}
    rate = (currents / cfg.input_gain).mean(0)[0]
    torch.testing.assert_close(rate, torch.sigmoid(x.detach())[0, 0], atol=0.06, rtol=0)
    currents.sum().backward()
    expected = cfg.input_gain * cfg.time_steps * torch.sigmoid(x) * (1 - torch.sigmoid(x))
    torch.testing.assert_close(x.grad, expected.detach())


@pytest.mark.parametrize("encoding", ["current", "poisson"])
def test_forward_is_run_of_encode_input_bit_for_bit(encoding):
    cfg = SpikingConfig(time_steps=5, hidden_dims=[24], out_dim=12, encoding=encoding)
    encoder = SemanticAbstractEncoder(cfg, in_dim=16)
    x = tokens(batch=4, n=7)
    torch.manual_seed(1)
    out = encoder(x)
    spikes, rates = out.spikes, out.rates
    torch.manual_seed(1)
    ref, layer_spikes = encoder.run(encoder.encode_input(x))
    assert torch.equal(spikes, ref.reshape(5, 4, 7, 12))
    assert set(layer_spikes) == set(rates)
    for name, s in layer_spikes.items():
        assert rates[name].item() == pytest.approx(s.mean().item())


def test_run_matches_norse_stepping_the_network_itself():
    """What the NIR export's reference does: `network(x_t, state)` step by step."""
    encoder = SemanticAbstractEncoder(CFG, in_dim=16)
    currents = encoder.encode_input(tokens(batch=4, n=6))
    state, expected = None, []
    with torch.no_grad():
        for step in currents:
            out, state = encoder.network(step, state)
            expected.append(out)
        spikes, layer_spikes = encoder.run(currents)
    assert torch.equal(spikes, torch.stack(expected))
    assert [tuple(s.shape) for s in layer_spikes.values()] == [
        (4, 24, 24),
        (4, 24, 20),
        (4, 24, 12),
    ]


def test_surrogate_gradient_reaches_the_visual_encoder_patch_embedding():
    torch.manual_seed(0)
    visual = VisualConcreteEncoder(VisualConfig(patch_size=8, dim=16, depth=1, heads=2), 16)
    encoder = SemanticAbstractEncoder(CFG, in_dim=16)
    spikes = encoder(visual(torch.rand(2, 3, 16, 16)).tokens).spikes
    spikes.mean().backward()  # a loss on the spikes alone
    grad = visual.patch_embed.weight.grad
    assert grad is not None and grad.abs().sum() > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_the_inputs_device():
    encoder = SemanticAbstractEncoder(CFG, in_dim=16).cuda()
    out = encoder(tokens().cuda())
    assert out.spikes.is_cuda and all(r.is_cuda for r in out.rates.values())


def test_a_generator_replays_the_poisson_currents_without_touching_the_global_rng():
    cfg = SpikingConfig(time_steps=6, hidden_dims=[8], out_dim=4, encoding="poisson")
    encoder = SemanticAbstractEncoder(cfg, in_dim=16)
    x = tokens()
    torch.manual_seed(5)
    before = torch.get_rng_state()
    a = encoder.encode_input(x, torch.Generator().manual_seed(3))
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(a, encoder.encode_input(x, torch.Generator().manual_seed(3)))
    assert not torch.equal(a, encoder.encode_input(x, torch.Generator().manual_seed(4)))


def test_the_registered_kinds():
    from ash_neuro.registry import SPIKING_ENCODERS

    assert SPIKING_ENCODERS.get("lif_stack") is SemanticAbstractEncoder
    assert SPIKING_ENCODERS.get("none")(CFG, 16) is None
