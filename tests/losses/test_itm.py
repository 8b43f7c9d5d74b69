"""ITM: hard negatives drawn from the ITC similarities, never a positive."""

from __future__ import annotations

import torch

from ash_neuro.losses.itm import itm_loss, sample_hard_negatives


def test_negatives_are_never_the_pair_itself():
    torch.manual_seed(0)
    logits = torch.randn(6, 6) * 3
    for _ in range(50):
        neg_image, neg_text = sample_hard_negatives(logits)
        assert (neg_image != torch.arange(6)).all() and (neg_text != torch.arange(6)).all()


def test_negatives_never_share_the_image_id():
    torch.manual_seed(0)
    ids = torch.tensor([0, 0, 1, 1, 2, 2])
    logits = torch.zeros(6, 6)
    for _ in range(50):
        neg_image, neg_text = sample_hard_negatives(logits, ids)
        assert (ids[neg_image] != ids).all() and (ids[neg_text] != ids).all()


def test_hard_negatives_are_drawn_by_similarity():
    torch.manual_seed(0)
    logits = torch.zeros(4, 4)
    logits[1, 0] = 5.0  # image 1 looks very much like text 0
    logits[0, 3] = 5.0  # image 0 looks very much like text 3
    draws = [sample_hard_negatives(logits) for _ in range(200)]
    image_for_text0 = torch.stack([d[0][0] for d in draws])
    text_for_image0 = torch.stack([d[1][0] for d in draws])
    # softmax weights e^5 : 1 : 1 over the three candidates
    assert (image_for_text0 == 1).float().mean() > 0.9
    assert (text_for_image0 == 3).float().mean() > 0.9


def test_a_batch_of_one_image_has_no_negatives():
    neg_image, neg_text = sample_hard_negatives(torch.zeros(3, 3), torch.tensor([4, 4, 4]))
    assert (neg_image == -1).all() and (neg_text == -1).all()


def test_itm_loss_is_two_way_cross_entropy():
    logits = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    labels = torch.tensor([1, 0])
    expected = (torch.log(torch.tensor(2.0)) + torch.log1p(torch.exp(torch.tensor(-2.0)))) / 2
    torch.testing.assert_close(itm_loss(logits, labels), expected)
