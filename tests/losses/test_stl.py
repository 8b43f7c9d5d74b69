"""STL, Spiked Text Learning: each caption word matched to its best instance's spike code,
averaged over words, InfoNCE from images to captions; a closed-form example worked by hand."""

from __future__ import annotations

import math

import pytest
import torch

from ash_neuro.losses.stl import stl_loss, stl_similarity, word_mask

E = torch.eye(4)  # four orthogonal unit embeddings e0..e3


def test_word_mask_drops_cls_sep_and_padding():
    text_mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]])
    assert word_mask(text_mask).tolist() == [
        [False, True, True, False, False],
        [False, False, False, False, False],
    ]


def test_closed_form_similarity_and_loss():
    # image 0: instances e0, e1; image 1: instances e2 and a padded instance that equals e3
    instances = torch.stack([torch.stack([E[0], E[1]]), torch.stack([E[2], E[3]])])
    instance_mask = torch.tensor([[True, True], [True, False]])
    # caption 0: words e0, e1 (+ one padded position); caption 1: words e2, e3, e0
    words = torch.stack([torch.stack([E[0], E[1], E[2]]), torch.stack([E[2], E[3], E[0]])])
    words_mask = torch.tensor([[True, True, False], [True, True, True]])
    # s_ij = mean over the words of the best instance's cosine:
    #   s_00: e0 -> 1, e1 -> 1              = 1
    #   s_01: e2 -> 0, e3 -> 0, e0 -> 1      = 1/3
    #   s_10: e0 -> 0, e1 -> 0 (only e2 is real) = 0
    #   s_11: e2 -> 1, e3 -> 0 (e3's instance is padding), e0 -> 0 = 1/3
    s = stl_similarity(instances, instance_mask, words, words_mask)
    torch.testing.assert_close(s, torch.tensor([[1.0, 1 / 3], [0.0, 1 / 3]]))
    tau = 0.5
    row0 = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + math.exp(1 / 3 / tau)))
    row1 = -math.log(math.exp(1 / 3 / tau) / (math.exp(0.0) + math.exp(1 / 3 / tau)))
    loss = stl_loss(instances, instance_mask, words, words_mask, tau)
    assert loss.item() == pytest.approx((row0 + row1) / 2, rel=1e-6)
    # both captions of image 0 (image_ids): row 0's target is split over the two columns
    ids = torch.tensor([0, 0])
    both = stl_loss(instances, instance_mask, words, words_mask, tau, ids)
    lse = math.log(math.exp(1 / tau) + math.exp(1 / 3 / tau))
    lse1 = math.log(1 + math.exp(1 / 3 / tau))
    expected = ((lse - (1 / tau + 1 / 3 / tau) / 2) + (lse1 - (0 + 1 / 3 / tau) / 2)) / 2
    assert both.item() == pytest.approx(expected, rel=1e-6)


def test_only_the_spike_side_learns():
    instances = torch.nn.functional.normalize(torch.randn(3, 2, 4), dim=-1).requires_grad_()
    words = torch.nn.functional.normalize(torch.randn(3, 5, 4), dim=-1).requires_grad_()
    mask = torch.ones(3, 2, dtype=torch.bool)
    stl_loss(instances, mask, words, torch.ones(3, 5, dtype=torch.bool), 0.07).backward()
    assert instances.grad.abs().sum() > 0 and words.grad is None
