"""STUA: spikes aligned to text features alone; the text side is a fixed target."""

from __future__ import annotations

import math

import pytest
import torch

from ash_neuro.config import TextConfig
from ash_neuro.losses.stua import stua_loss
from ash_neuro.models.text_encoder import TextEncoder


def test_closed_form_for_aligned_one_hot_embeddings():
    e = torch.eye(3)
    t = 0.5
    expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + 2))
    assert stua_loss(e, e, t).item() == pytest.approx(expected, rel=1e-5)
    assert stua_loss(e, e[[2, 0, 1]], t) > stua_loss(e, e, t) + 1


def test_it_is_one_directional_spikes_to_texts():
    # two spike embeddings near the same text: text 1 is never picked, which a spike-to-text
    # loss does not punish beyond the rows' own terms
    spikes = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    texts = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    row0 = -math.log(math.exp(10) / (math.exp(10) + 1))
    row1 = -math.log(1 / (math.exp(10) + 1))
    assert stua_loss(spikes, texts, 0.1).item() == pytest.approx((row0 + row1) / 2, rel=1e-5)


def test_no_gradient_reaches_the_text_encoder():
    torch.manual_seed(0)
    text_encoder = TextEncoder.build(TextConfig(dim=16, depth=1, heads=2, max_len=8), 30, 0)
    ids = torch.tensor([[2, 7, 9, 3], [2, 11, 3, 0], [2, 5, 6, 3]])
    cls = text_encoder(ids, (ids != 0).long()).hidden[:, 0, :8]
    text_embed = torch.nn.functional.normalize(cls, dim=-1)
    spike_proj = torch.nn.Linear(12, 8)
    spike_embed = torch.nn.functional.normalize(spike_proj(torch.rand(3, 12)), dim=-1)
    stua_loss(spike_embed, text_embed, 0.07).backward()
    assert spike_proj.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in text_encoder.parameters())
