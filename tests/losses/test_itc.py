"""ITC: symmetric contrastive loss with a temperature; duplicate images as soft positives."""

from __future__ import annotations

import math

import pytest
import torch

from ash_neuro.losses.itc import image_text_logits, itc_loss, itc_loss_from_logits


def test_aligned_one_hot_embeddings_give_the_closed_form_loss():
    batch, t = 4, 0.5
    e = torch.eye(batch)
    # logits: 1/t on the diagonal, 0 elsewhere, in both directions
    expected = math.log(1 + (batch - 1) * math.exp(-1 / t))
    assert itc_loss(e, e, t).item() == pytest.approx(expected, rel=1e-5)


def test_shuffled_pairs_cost_more_and_lower_temperature_sharpens():
    e = torch.eye(4)
    assert itc_loss(e, e[[1, 0, 3, 2]], 0.1) > itc_loss(e, e, 0.1) + 5
    assert itc_loss(e, e, 0.05) < itc_loss(e, e, 0.1)


def test_symmetric_in_images_and_texts():
    torch.manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(5, 8), dim=-1)
    b = torch.nn.functional.normalize(torch.randn(5, 8), dim=-1)
    assert itc_loss(a, b, 0.07).item() == pytest.approx(itc_loss(b, a, 0.07).item())


def test_same_image_ids_are_soft_positives():
    # items 0 and 1 show the same image; their texts are identical
    image = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    t = 0.1
    ids = torch.tensor([7, 7, 9])
    # row 0: logits [10, 10, 0], targets [1/2, 1/2, 0]
    p_pos = math.exp(10) / (2 * math.exp(10) + 1)
    row_dup = -math.log(p_pos)
    row_single = -math.log(math.exp(10) / (math.exp(10) + 2))
    expected = (2 * row_dup + row_single) / 3
    assert itc_loss(image, image, t, ids).item() == pytest.approx(expected, rel=1e-5)


def test_soft_targets_are_uniform_over_each_rows_positives():
    torch.manual_seed(0)
    logits = torch.randn(4, 4)
    ids = torch.tensor([1, 1, 2, 3])
    targets = torch.tensor([[0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]])
    i2t = -(targets * logits.log_softmax(1)).sum(1).mean()
    t2i = -(targets * logits.T.log_softmax(1)).sum(1).mean()
    torch.testing.assert_close(itc_loss_from_logits(logits, ids), (i2t + t2i) / 2)
    plain = torch.nn.functional.cross_entropy(logits, torch.arange(4))
    plain_t = torch.nn.functional.cross_entropy(logits.T, torch.arange(4))
    torch.testing.assert_close(itc_loss_from_logits(logits), (plain + plain_t) / 2)


def test_gradient_reaches_the_temperature():
    temp = torch.tensor(0.07, requires_grad=True)
    torch.manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    itc_loss_from_logits(image_text_logits(a, a, temp)).backward()
    assert temp.grad is not None and temp.grad != 0
