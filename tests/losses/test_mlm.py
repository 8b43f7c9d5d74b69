"""MLM: BERT's 80/10/10 masking away from special tokens, and the loss."""

from __future__ import annotations

import math

import pytest
import torch

from ash_neuro.losses.mlm import IGNORE_INDEX, TokenizerInfo, mask_tokens, mlm_loss

INFO = TokenizerInfo(vocab_size=50, pad_id=0, mask_id=4, special_ids=(0, 1, 2, 3, 4))


def captions(batch=400, length=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 50, (batch, length), generator=g)
    lengths = torch.randint(4, length + 1, (batch,), generator=g)
    mask = (torch.arange(length) < lengths[:, None]).long()
    ids[:, 0] = 2
    ids[torch.arange(batch), lengths - 1] = 3
    ids[mask == 0] = 0
    return ids, mask


def test_specials_and_padding_are_never_chosen_or_changed():
    ids, mask = captions()
    torch.manual_seed(0)
    masked, labels = mask_tokens(ids, mask, INFO, mask_prob=0.9)
    special = torch.isin(ids, torch.tensor(INFO.special_ids)) | (mask == 0)
    assert (labels[special] == IGNORE_INDEX).all()
    assert torch.equal(masked[special], ids[special])
    chosen = labels != IGNORE_INDEX
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(masked[~chosen], ids[~chosen])


def test_rates_follow_mask_prob_and_80_10_10():
    ids, mask = captions()
    torch.manual_seed(0)
    masked, labels = mask_tokens(ids, mask, INFO, mask_prob=0.15)
    real = (mask == 1) & ~torch.isin(ids, torch.tensor(INFO.special_ids))
    chosen = labels != IGNORE_INDEX
    assert chosen.sum() / real.sum() == pytest.approx(0.15, abs=0.015)
    n = chosen.sum()
    as_mask = (masked[chosen] == INFO.mask_id).sum() / n
    kept = (masked[chosen] == ids[chosen]).sum() / n
    assert as_mask == pytest.approx(0.8, abs=0.04)
    # kept = 10% left alone + random picks that happen to hit the same id (1/45 of 10%)
    assert kept == pytest.approx(0.1 + 0.1 / 45, abs=0.03)
    random = chosen & (masked != INFO.mask_id)
    assert not torch.isin(masked[random], torch.tensor(INFO.special_ids)).any()


def test_loss_of_uniform_logits_is_log_vocabulary():
    labels = torch.tensor([[IGNORE_INDEX, 7, IGNORE_INDEX, 9]])
    logits = torch.zeros(1, 4, 50)
    assert mlm_loss(logits, labels).item() == pytest.approx(math.log(50))


def test_loss_averages_over_labelled_positions_only():
    logits = torch.full((1, 3, 5), -10.0)
    logits[0, 0, 2] = 10.0  # confident and right
    logits[0, 1, 3] = 10.0  # a position without a label: whatever it predicts
    labels = torch.tensor([[2, IGNORE_INDEX, 2]])  # position 2 is uniform: log 5
    expected = (0 + math.log(5)) / 2
    assert mlm_loss(logits, labels).item() == pytest.approx(expected, abs=1e-4)


def test_no_label_gives_zero_not_nan():
    logits = torch.randn(2, 3, 5, requires_grad=True)
    loss = mlm_loss(logits, torch.full((2, 3), IGNORE_INDEX))
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(logits.grad).all()


def test_info_from_a_transformers_tokenizer():
    class Tokenizer:
        pad_token_id, mask_token_id, all_special_ids = 0, 4, [4, 0, 2, 3, 1]

        def __len__(self):
            return 600

    assert TokenizerInfo.from_tokenizer(Tokenizer()) == TokenizerInfo(600, 0, 4, (0, 1, 2, 3, 4))
