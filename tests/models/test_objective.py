"""The pre-training objective: every enabled loss, weighted total, skipped losses, gradients."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import ash_neuro.objective as objective
from ash_neuro.models.factory import build_model
from ash_neuro.objective import LOSS_NAMES, PretrainingObjective, pretraining_losses


def losses_for(cfg, info, batch, seed=0):
    torch.manual_seed(seed)
    model = build_model(cfg, info.vocab_size)
    return model, *pretraining_losses(model, batch, cfg.loss, info)


def test_all_losses_and_their_weighted_total(tiny_cfg, token_info, batch):
    _, losses, rates = losses_for(tiny_cfg, token_info, batch)
    assert list(losses) == [*LOSS_NAMES, "total"]
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    total = sum(getattr(tiny_cfg.loss, name) * losses[name] for name in LOSS_NAMES)
    torch.testing.assert_close(losses["total"], total)
    assert list(rates) == ["lif1", "lif2"] and not any(r.requires_grad for r in rates.values())


def test_zero_weight_losses_are_not_computed(tiny_cfg, token_info, batch, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("computed a switched-off loss")

    for name in ("augment_view", "mask_tokens", "sample_hard_negatives", "stua_loss"):
        monkeypatch.setattr(objective, name, forbidden)
    off = dict.fromkeys(("itm", "mlm", "spike_contrastive", "stua"), 0.0)
    cfg = dataclasses.replace(tiny_cfg, loss=dataclasses.replace(tiny_cfg.loss, **off))
    _, losses, _ = losses_for(cfg, token_info, batch)
    assert list(losses) == ["itc", "spike_rate", "total"]


def test_ann_only_skips_the_spiking_losses(ann_only_cfg, token_info, batch):
    _, losses, rates = losses_for(ann_only_cfg, token_info, batch)
    assert list(losses) == ["itc", "itm", "mlm", "total"] and rates == {}


def test_every_parameter_learns_from_the_total(tiny_cfg, token_info, batch):
    model, losses, _ = losses_for(tiny_cfg, token_info, batch)
    losses["total"].backward()
    silent = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert silent == []


def test_duplicate_images_are_positives(tiny_cfg, token_info, batch):
    batch = dict(batch, image_id=torch.tensor([0, 0, 1, 2, 2, 3]))
    batch["image"] = batch["image"][torch.tensor([0, 0, 2, 3, 3, 5])]
    _, losses, _ = losses_for(tiny_cfg, token_info, batch)
    assert torch.isfinite(losses["total"])


def test_module_wrapper_takes_a_tokenizer_or_its_info(tiny_cfg, token_info, batch):
    torch.manual_seed(0)
    model = build_model(tiny_cfg, token_info.vocab_size)
    wrapper = PretrainingObjective(model, tiny_cfg.loss, token_info)
    assert wrapper.tokenizer_info is token_info
    assert {n for n, _ in wrapper.named_parameters()} == {
        f"model.{n}" for n, _ in model.named_parameters()
    }
    losses, _ = wrapper(batch)
    assert "total" in losses


def test_all_weights_zero_is_refused(tiny_cfg, token_info):
    zero = dict.fromkeys(LOSS_NAMES, 0.0)
    cfg = dataclasses.replace(tiny_cfg, loss=dataclasses.replace(tiny_cfg.loss, **zero))
    with pytest.raises(ValueError, match="weight 0"):
        PretrainingObjective(build_model(cfg, token_info.vocab_size), cfg.loss, token_info)


def test_spike_contrast_pairs_the_images_with_an_augmented_view(tiny_cfg, token_info, batch):
    seen = {}
    real_augment, real_loss = objective.augment_view, objective.spike_contrastive_loss

    def augment(image):
        seen["augmented"] = image
        return real_augment(image)

    def loss(spikes, other_view, **kwargs):
        seen["views"] = (spikes, other_view)
        return real_loss(spikes, other_view, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(objective, "augment_view", augment)
        patch.setattr(objective, "spike_contrastive_loss", loss)
        losses_for(tiny_cfg, token_info, batch)
    assert seen["augmented"] is batch["image"]
    spikes, other = seen["views"]
    assert other is not None and other.shape == spikes.shape and not torch.equal(other, spikes)
