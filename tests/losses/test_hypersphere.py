"""The intra-modal hypersphere objectives: alignment and uniformity (Wang and Isola 2020) on
hand-worked examples and against NumPy, and the two registered losses on a tiny network."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ash_neuro.errors import AshError
from ash_neuro.losses.hypersphere import (
    TextSphere,
    VisualSphere,
    alignment,
    hypersphere_loss,
    uniformity,
)
from ash_neuro.objective import ForwardPass
from tests.cmal_fixtures import TOKEN_INFO, cmal_batch, cmal_model

E = torch.eye(3)


def test_closed_form_alignment_and_uniformity():
    assert alignment(E[:2], E[:2]).item() == 0.0
    assert alignment(E[[0]], E[[1]]).item() == pytest.approx(2.0)  # |e0 - e1|^2
    # two orthogonal unit vectors: one pair at squared distance 2 -> log exp(-2 * 2)
    assert uniformity(E[:2]).item() == pytest.approx(-4.0)
    # e0, e1, -e0: squared distances 2, 4, 2
    three = torch.stack([E[0], E[1], -E[0]])
    expected = math.log((2 * math.exp(-4) + math.exp(-8)) / 3)
    assert uniformity(three).item() == pytest.approx(expected, rel=1e-6)
    loss = hypersphere_loss(E[[0]], E[[1]], E[:2], three)
    assert loss.item() == pytest.approx(2.0 + (-4.0 + expected) / 2, rel=1e-6)


def test_uniformity_against_numpy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((9, 5))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    pairs = [(i, j) for i in range(9) for j in range(i + 1, 9)]
    potential = [np.exp(-2 * np.sum((x[i] - x[j]) ** 2)) for i, j in pairs]
    got = uniformity(torch.from_numpy(x)).item()
    assert got == pytest.approx(np.log(np.mean(potential)), rel=1e-9)


def test_fewer_than_two_items_contribute_nothing_but_keep_the_graph():
    one = torch.randn(1, 3, requires_grad=True)
    assert uniformity(one).item() == 0.0 and uniformity(one).requires_grad
    empty = torch.zeros(0, 3, requires_grad=True)
    assert alignment(empty, empty).item() == 0.0


def test_the_registered_losses_train_their_own_sphere():
    model, cfg = cmal_model()
    batch = cmal_batch()
    forward = ForwardPass(model, batch, cfg.loss, TOKEN_INFO)
    visual = VisualSphere(cfg.loss)(forward)
    text = TextSphere(cfg.loss)(forward)
    assert torch.isfinite(visual) and torch.isfinite(text)
    (visual + text).backward()
    encoder = model.fusion_encoder
    assert encoder.visual_sphere.proj.weight.grad.abs().sum() > 0
    assert encoder.text_sphere.proj.weight.grad.abs().sum() > 0
    assert model.visual_concrete_encoder.patches.patch_embed.weight.grad.abs().sum() > 0
    assert model.text_encoder.model.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    without = {k: v for k, v in batch.items() if k != "instance_map"}
    with pytest.raises(AshError, match="needs the tokens of the data's panoptic maps"):
        VisualSphere(cfg.loss)(ForwardPass(model, without, cfg.loss, TOKEN_INFO))
    # k-means segments of the image do not name the map's instances either
    model.visual_concrete_encoder.segments = "kmeans"
    with pytest.raises(AshError, match="segments: panoptic"):
        VisualSphere(cfg.loss)(ForwardPass(model, batch, cfg.loss, TOKEN_INFO))
