"""The assembled ASH-Net from `build_model`: hybrid and ANN-only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from norse.torch import LIFBoxCell

from ash_neuro.models.ash_net import ASHNet
from ash_neuro.models.factory import build_model

VOCAB = 40


def test_build_model_follows_the_config(tiny_cfg):
    model = build_model(tiny_cfg, vocab_size=VOCAB, pad_token_id=0)
    assert isinstance(model, ASHNet) and model.hybrid
    assert model.visual_concrete_encoder.image_size == tiny_cfg.world.image_size
    assert model.text_encoder.model.config.vocab_size == VOCAB
    assert model.itc.temperature().item() == pytest.approx(tiny_cfg.loss.temperature)


def test_hybrid_outputs_have_the_documented_shapes(tiny_cfg, batch):
    model = build_model(tiny_cfg, VOCAB)
    visual = model.encode_image(batch["image"])
    n = model.visual_concrete_encoder.n_tokens  # 1 + (16 / 8)^2 = 5
    spiking = tiny_cfg.model.spiking
    assert visual.features.tokens.shape == (6, n, 16)
    # the embedded input and one state per block (depth 1)
    assert [tuple(h.shape) for h in visual.features.hidden_states] == [(6, n, 16)] * 2
    assert visual.tokens.shape == (6, 2 * n, 16)
    # the patch tokens of each token set: ANN rows 1..4, spike-rate rows 6..9
    assert [(g.start, g.stop) for g in visual.grids] == [(1, n), (n + 1, 2 * n)]
    assert visual.spikes.shape == (spiking.time_steps, 6, n, spiking.out_dim)
    assert visual.spikes is visual.spiking.spikes
    assert set(visual.spikes.unique().tolist()) <= {0.0, 1.0}
    assert list(visual.spike_rates) == ["lif1", "lif2"]
    assert visual.spike_rates["lif2"].item() == pytest.approx(visual.spikes.mean().item())
    assert visual.image_embed.shape == visual.spike_embed.shape == (6, 8)
    text = model.encode_text(batch["text_ids"], batch["text_mask"])
    assert text.hidden.shape == (6, 10, 16) and text.text_embed.shape == (6, 8)
    assert text.hidden is text.features.hidden and text.features.mask is batch["text_mask"]
    fused = model.fuse(text.hidden, batch["text_mask"], visual.tokens)
    assert fused.shape == (6, 10, 16)
    assert model.itm(fused[:, 0]).shape == (6, 2)
    assert model.mlm(fused).shape == (6, 10, VOCAB)


def test_the_image_embedding_depends_on_the_spiking_path(tiny_cfg, batch):
    torch.manual_seed(0)
    model = build_model(tiny_cfg, VOCAB)
    before = model.encode_image(batch["image"]).image_embed
    with torch.no_grad():
        model.adapter.spike_proj.weight.mul_(3.0)
    after = model.encode_image(batch["image"]).image_embed
    assert not torch.allclose(before, after)


def test_ann_only_has_no_spiking_parameter_or_layer(tiny_cfg, ann_only_cfg, batch):
    model = build_model(ann_only_cfg, VOCAB)
    assert not model.hybrid and model.semantic_abstract_encoder is None
    assert not {"spikes", "spike_rates", "spike_embed"} & model.outputs
    assert not any(isinstance(m, LIFBoxCell) for m in model.modules())
    names = [name for name, _ in model.named_parameters()]
    assert not [n for n in names if "spike" in n or "semantic_abstract" in n]
    visual = model.encode_image(batch["image"])
    assert visual.spiking is None and visual.spikes is None and visual.spike_embed is None
    assert visual.spike_rates == {}
    assert visual.tokens.shape == (6, model.visual_concrete_encoder.n_tokens, 16)
    assert len(visual.grids) == model.adapter.token_sets == 1
    hybrid = build_model(tiny_cfg, VOCAB)
    assert {"spikes", "spike_rates", "spike_embed"} <= hybrid.outputs
    spiking = {n for n, _ in hybrid.named_parameters()} - set(names)
    assert spiking and all("spike" in n or "semantic_abstract" in n for n in spiking)


def test_one_text_embedding_table_in_the_weights(tiny_cfg):
    """The NIR export reads the vocabulary size off the single *word_embeddings.weight."""
    state = build_model(tiny_cfg, VOCAB).state_dict()
    tables = [k for k in state if k.endswith("word_embeddings.weight")]
    assert len(tables) == 1 and state[tables[0]].shape[0] == VOCAB


def test_semantic_abstract_encoder_is_reachable_for_export(tiny_cfg):
    model = build_model(tiny_cfg, VOCAB)
    network = model.semantic_abstract_encoder.network
    assert {type(m) for m in network} == {torch.nn.Linear, LIFBoxCell}
    assert network[0].in_features == tiny_cfg.model.visual.dim


def test_image_embedding_is_the_projected_mean_of_the_joined_tokens(tiny_cfg, batch):
    """ITC image embedding = normalise(W mean_tokens + b), and STUA's spike embedding =
    normalise(W_s mean_{t, n} spikes + b_s): NumPy from the weights."""
    torch.manual_seed(0)
    model = build_model(tiny_cfg, VOCAB)
    with torch.no_grad():
        visual = model.encode_image(batch["image"])
    proj = model.itc.image_proj
    w, b = proj.weight.double().detach().numpy(), proj.bias.double().detach().numpy()
    pooled = visual.tokens.double().numpy().mean(axis=1)
    expected = pooled @ w.T + b
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(visual.image_embed.double().numpy(), expected, atol=1e-5)
    ws = model.spike_embed_proj.weight.double().detach().numpy()
    bs = model.spike_embed_proj.bias.double().detach().numpy()
    rates = visual.spikes.double().numpy().mean(axis=(0, 2))
    spike = rates @ ws.T + bs
    spike /= np.linalg.norm(spike, axis=1, keepdims=True)
    np.testing.assert_allclose(visual.spike_embed.double().numpy(), spike, atol=1e-5)


def gshn_cfg():
    from ash_neuro.config import config_from_dict
    from tests.models.conftest import TINY

    model = {
        **TINY["model"],
        "visual": {**TINY["model"]["visual"], "kind": "panoptic_instances", "max_instances": 4},
        "graph": {"kind": "gat", "heads": 2},
        "adapter": {"kind": "ratio"},
    }
    return config_from_dict({**TINY, "model": model})


def test_padded_instances_are_left_out_of_every_mean():
    """GSHN's tokens: absent instances are masked in the joined tokens, and the ITC, STUA
    embeddings and the spike rates are means over the real instances only (NumPy)."""
    torch.manual_seed(0)
    model = build_model(gshn_cfg(), VOCAB).eval()
    image = torch.rand(2, 3, 16, 16)
    instance_map = torch.zeros(2, 16, 16, dtype=torch.long)
    instance_map[0, 8:] = 1  # image 0: instances 0, 1; image 1: instance 0 and 2
    instance_map[1, :, 8:] = 2
    with torch.no_grad():
        visual = model.encode_image(image, instance_map)
    mask = torch.tensor([[True, True, False, False], [True, False, True, False]])
    assert torch.equal(visual.mask, mask) and torch.equal(visual.features.mask, mask)
    assert visual.tokens.shape == (2, 4, 16) and visual.spikes.shape[1:3] == (2, 4)
    for b in range(2):
        real = mask[b].numpy()
        pooled = visual.tokens[b].numpy()[real].mean(axis=0)
        w, bias = (
            t.detach().numpy() for t in (model.itc.image_proj.weight, model.itc.image_proj.bias)
        )
        embed = pooled @ w.T + bias
        np.testing.assert_allclose(
            visual.image_embed[b].numpy(), embed / np.linalg.norm(embed), rtol=1e-5, atol=1e-6
        )
        rates = visual.spikes[:, b].numpy()[:, real].mean(axis=(0, 1))
        w, bias = (
            t.detach().numpy() for t in (model.spike_embed_proj.weight, model.spike_embed_proj.bias)
        )
        embed = rates @ w.T + bias
        np.testing.assert_allclose(
            visual.spike_embed[b].numpy(), embed / np.linalg.norm(embed), rtol=1e-5, atol=1e-6
        )
    out = visual.spikes.numpy()  # (T, B, K, D): the last layer's rate over real rows only
    real_rows = out[:, mask.numpy()]
    assert visual.spike_rates["lif2"].item() == pytest.approx(real_rows.mean(), rel=1e-6)
    assert real_rows.mean() != pytest.approx(out.mean())  # the padded rows would change it
