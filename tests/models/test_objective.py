"""The pre-training objective: the registered losses of `loss.weights`, their weighted total,
skipped and unknown losses, and each loss's wiring checked against NumPy."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import ash_neuro.losses.itm as itm_module
import ash_neuro.losses.mlm as mlm_module
import ash_neuro.losses.spike_contrastive as spike_contrastive_module
import ash_neuro.losses.stua as stua_module
import ash_neuro.objective as objective
from ash_neuro.config import default_loss_weights
from ash_neuro.errors import ConfigError
from ash_neuro.losses.base import Loss
from ash_neuro.losses.mlm import IGNORE_INDEX
from ash_neuro.models.factory import build_model
from ash_neuro.objective import PretrainingObjective, enabled_losses
from ash_neuro.registry import LOSSES

ALL = list(default_loss_weights())
ITC_TEMPERATURE = 0.02  # the model's learnable one, set apart from loss.temperature (0.07)


def with_weights(cfg, **weights: float):
    """`cfg` whose loss weights are exactly `weights` (in that order)."""
    return dataclasses.replace(cfg, loss=dataclasses.replace(cfg.loss, weights=weights))


def build(cfg, info, seed=0):
    torch.manual_seed(seed)
    model = build_model(cfg, info.vocab_size)
    with torch.no_grad():
        model.itc.temp.fill_(ITC_TEMPERATURE)
    return model


def run(cfg, info, batch, seed=0):
    model = build(cfg, info, seed)
    losses, rates = PretrainingObjective(model, cfg.loss, info)(batch)
    return model, losses, rates


# --- NumPy references -----------------------------------------------------------------------


def np_soft_cross_entropy(logits: np.ndarray, positives: np.ndarray) -> float:
    """Mean over rows of -sum_j q_ij log softmax(logits)_ij, q uniform over the positives."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    targets = positives / positives.sum(axis=1, keepdims=True)
    return float(-(targets * log_softmax).sum(axis=1).mean())


def np_outputs(model, batch):
    """The model's embeddings and rates on the batch, as float64 arrays."""
    with torch.no_grad():
        visual = model.encode_image(batch["image"])
        text = model.encode_text(batch["text_ids"], batch["text_mask"])
    as_np = lambda t: t.double().numpy()  # noqa: E731
    rates = np.array([as_np(r) for r in visual.spike_rates.values()])
    return as_np(visual.image_embed), as_np(text.text_embed), as_np(visual.spike_embed), rates


def positives_of(batch) -> np.ndarray:
    ids = batch.get("image_id")
    if ids is None:
        return np.eye(len(batch["image"]))
    ids = ids.numpy()
    return (ids[:, None] == ids[None, :]).astype(float)


# --- what is computed -----------------------------------------------------------------------


def test_every_enabled_loss_in_the_order_of_the_weights(tiny_cfg, token_info, batch):
    _, losses, rates = run(tiny_cfg, token_info, batch)
    assert list(losses) == [*ALL, "total"]
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    assert list(rates) == [
        "lif1", "lif2", "lif1_silent", "lif1_saturated", "lif2_silent", "lif2_saturated"
    ]  # fmt: skip
    assert not any(r.requires_grad for r in rates.values())
    assert all(0 <= float(r) <= 1 for r in rates.values())
    reordered = with_weights(tiny_cfg, stua=1.0, itc=1.0)
    assert list(run(reordered, token_info, batch)[1]) == ["stua", "itc", "total"]


class Constant(Loss):
    """A test loss of a fixed value (still connected to the graph through the images)."""

    value = 0.0
    needs = frozenset({"image_embed"})

    def __call__(self, forward):
        return forward.visual.image_embed.sum() * 0 + self.value


class ConstantA(Constant):
    value = 1.5


class ConstantB(Constant):
    value = 2.0


class NeverBuilt(Constant):
    def __init__(self, cfg):
        raise AssertionError("a loss of weight 0 was built")


@pytest.fixture
def constant_losses():
    for name, loss in (("const_a", ConstantA), ("const_b", ConstantB), ("never", NeverBuilt)):
        LOSSES.register(name)(loss)
    yield
    for name in ("const_a", "const_b", "never"):
        LOSSES.unregister(name)


def test_total_is_the_weighted_sum_of_the_losses(tiny_cfg, token_info, batch, constant_losses):
    cfg = with_weights(tiny_cfg, const_a=0.25, never=0.0, const_b=3.0)
    _, losses, _ = run(cfg, token_info, batch)
    assert list(losses) == ["const_a", "const_b", "total"]
    assert losses["total"].item() == pytest.approx(0.25 * 1.5 + 3.0 * 2.0)  # 6.375


def test_itc_stua_and_spike_rate_equal_numpy(tiny_cfg, token_info, batch):
    cfg = with_weights(tiny_cfg, itc=0.3, itm=0.0, stua=2.0, spike_rate=0.7)
    model, losses, _ = run(cfg, token_info, batch)
    image, text, spike, rates = np_outputs(model, batch)
    eye = np.eye(len(image))
    logits = image @ text.T / ITC_TEMPERATURE  # the model's temperature
    itc = (np_soft_cross_entropy(logits, eye) + np_soft_cross_entropy(logits.T, eye)) / 2
    stua = np_soft_cross_entropy(spike @ text.T / 0.07, eye)  # loss.temperature
    rate = float((((rates - 0.1) / 0.1) ** 2).mean())  # loss.target_rate 0.1
    assert losses["itc"].item() == pytest.approx(itc, rel=1e-5)
    assert losses["stua"].item() == pytest.approx(stua, rel=1e-5)
    assert losses["spike_rate"].item() == pytest.approx(rate, rel=1e-5)
    assert losses["total"].item() == pytest.approx(0.3 * itc + 2.0 * stua + 0.7 * rate, rel=1e-5)


def test_duplicate_images_are_positives(tiny_cfg, token_info, batch):
    """Items 0, 1 and 3, 4 have the same image id: ITC's and STUA's targets are uniform over
    every caption of the image. (The images are left distinct: with identical images the soft
    and the one-hot targets give the same value, and the test could not tell them apart.)"""
    batch = dict(batch, image_id=torch.tensor([0, 0, 1, 2, 2, 3]))
    cfg = with_weights(tiny_cfg, itc=1.0, stua=1.0)
    model, losses, _ = run(cfg, token_info, batch)
    image, text, spike, _ = np_outputs(model, batch)
    same = positives_of(batch)
    assert same.sum() == 6 + 4  # the diagonal and the two duplicate pairs both ways
    logits = image @ text.T / ITC_TEMPERATURE
    itc = (np_soft_cross_entropy(logits, same) + np_soft_cross_entropy(logits.T, same.T)) / 2
    stua = np_soft_cross_entropy(spike @ text.T / 0.07, same)
    assert losses["itc"].item() == pytest.approx(itc, rel=1e-5)
    assert losses["stua"].item() == pytest.approx(stua, rel=1e-5)
    # the ids matter: with one-hot targets the value is another
    eye = np.eye(6)
    plain = (np_soft_cross_entropy(logits, eye) + np_soft_cross_entropy(logits.T, eye)) / 2
    assert abs(plain - itc) > 1e-3, (plain, itc)


def test_itm_fuses_positives_then_both_kinds_of_negative(tiny_cfg, token_info, batch, monkeypatch):
    """With the hard negatives fixed, ITM is the 2-way cross-entropy of B positive pairs, then
    (text i, image neg_image[i]), then (text neg_text[i], image i), each fused on its own."""
    b = len(batch["image"])
    neg_image, neg_text = torch.roll(torch.arange(b), 1), torch.roll(torch.arange(b), -2)
    monkeypatch.setattr(itm_module, "sample_hard_negatives", lambda *a: (neg_image, neg_text))
    cfg = with_weights(tiny_cfg, itm=1.0)
    model, losses, _ = run(cfg, token_info, batch)
    pairs = [(i, i, 1) for i in range(b)]
    pairs += [(i, int(neg_image[i]), 0) for i in range(b)]
    pairs += [(int(neg_text[i]), i, 0) for i in range(b)]
    ids, mask = batch["text_ids"], batch["text_mask"]
    with torch.no_grad():
        tokens = model.encode_image(batch["image"]).tokens
        hidden = model.encode_text(ids, mask).hidden
        terms = []
        for t, i, label in pairs:
            fused = model.fuse(hidden[t : t + 1], mask[t : t + 1], tokens[i : i + 1])
            logit = model.itm(fused[:, 0])[0].double().numpy()
            terms.append(np.logaddexp(logit[0], logit[1]) - logit[label])
    assert losses["itm"].item() == pytest.approx(float(np.mean(terms)), rel=1e-5)


def test_mlm_predicts_the_masked_tokens_from_the_fused_states(
    tiny_cfg, token_info, batch, monkeypatch
):
    """With the masking fixed (position 1 of every caption becomes [MASK]), MLM is the mean
    cross-entropy of the fused masked captions' predictions at those positions."""
    ids, mask = batch["text_ids"], batch["text_mask"]
    masked = ids.clone()
    masked[:, 1] = token_info.mask_id
    labels = torch.full_like(ids, IGNORE_INDEX)
    labels[:, 1] = ids[:, 1]
    monkeypatch.setattr(mlm_module, "mask_tokens", lambda *a: (masked, labels))
    cfg = with_weights(tiny_cfg, mlm=1.0)
    model, losses, _ = run(cfg, token_info, batch)
    with torch.no_grad():
        tokens = model.encode_image(batch["image"]).tokens
        fused = model.fuse(model.encode_text(masked, mask).hidden, mask, tokens)
        logits = model.mlm(fused[:, 1]).double().numpy()  # (B, V)
    target = ids[:, 1].numpy()
    shifted = logits - logits.max(axis=1, keepdims=True)
    nll = np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(target)), target]
    assert losses["mlm"].item() == pytest.approx(float(nll.mean()), rel=1e-5)


def test_zero_weight_losses_are_not_computed(tiny_cfg, token_info, batch, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("computed a switched-off loss")

    monkeypatch.setattr(objective, "augment_pair", forbidden)
    monkeypatch.setattr(mlm_module, "mask_tokens", forbidden)
    monkeypatch.setattr(itm_module, "sample_hard_negatives", forbidden)
    monkeypatch.setattr(stua_module, "stua_loss", forbidden)
    cfg = with_weights(tiny_cfg, **dict(default_loss_weights(), itm=0, mlm=0, stua=0))
    cfg = with_weights(cfg, **{**cfg.loss.weights, "spike_contrastive": 0.0})
    _, losses, _ = run(cfg, token_info, batch)
    assert list(losses) == ["itc", "spike_rate", "total"]


def test_ann_only_skips_the_spiking_losses_whatever_their_weight(
    tiny_cfg, ann_only_cfg, token_info, batch
):
    assert ann_only_cfg.loss.weights == default_loss_weights()  # spiking weights above 0
    model = build(ann_only_cfg, token_info)
    assert list(enabled_losses(model, ann_only_cfg.loss)) == ["itc", "itm", "mlm"]
    hybrid = build(tiny_cfg, token_info)
    assert list(enabled_losses(hybrid, tiny_cfg.loss)) == ALL
    losses, rates = PretrainingObjective(model, ann_only_cfg.loss, token_info)(batch)
    assert list(losses) == ["itc", "itm", "mlm", "total"] and rates == {}


def test_an_unknown_loss_is_a_one_line_error_listing_the_losses(tiny_cfg, token_info):
    model = build(tiny_cfg, token_info)
    cfg = with_weights(tiny_cfg, itc=1.0, itcc=1.0).loss
    with pytest.raises(ConfigError) as info:
        enabled_losses(model, cfg)
    assert str(info.value) == (
        "loss.weights: unknown loss 'itcc'; registered: amc, concept_tagging, hitc, itc, itm, "
        "mim, mlm, neuron_rate, spike_contrastive, spike_rate, stl, stua, text_sphere, "
        "visual_sphere"
    )


def test_no_loss_left_is_refused(tiny_cfg, ann_only_cfg, token_info):
    zero = with_weights(tiny_cfg, **dict.fromkeys(ALL, 0.0))
    with pytest.raises(ConfigError, match="weight 0"):
        PretrainingObjective(build(zero, token_info), zero.loss, token_info)
    # an ANN-only network with only spiking losses switched on has nothing to compute either
    spiking_only = with_weights(ann_only_cfg, spike_contrastive=1.0, stua=1.0, spike_rate=1.0)
    with pytest.raises(ConfigError, match="every pre-training loss this network can compute"):
        enabled_losses(build(spiking_only, token_info), spiking_only.loss)


def test_every_parameter_learns_from_the_total(tiny_cfg, token_info, batch):
    model, losses, _ = run(tiny_cfg, token_info, batch)
    losses["total"].backward()
    silent = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert silent == []


def test_the_objective_takes_a_tokenizer_or_its_info(tiny_cfg, token_info, batch):
    class Tokenizer:  # what `TokenizerInfo.from_tokenizer` reads of a transformers tokenizer
        pad_token_id, mask_token_id, all_special_ids = 0, 4, [4, 3, 2, 1, 0]

        def __len__(self):
            return 40

    model = build(tiny_cfg, token_info)
    assert PretrainingObjective(model, tiny_cfg.loss, token_info).tokenizer_info is token_info
    wrapper = PretrainingObjective(model, tiny_cfg.loss, Tokenizer())
    assert wrapper.tokenizer_info == token_info
    assert {n for n, _ in wrapper.named_parameters()} == {
        f"model.{n}" for n, _ in model.named_parameters()
    }


def test_spike_contrast_pairs_the_images_with_an_augmented_view(
    tiny_cfg, token_info, batch, monkeypatch
):
    seen = {}
    real_augment = objective.augment_pair
    real_loss = spike_contrastive_module.spike_contrastive_loss

    def augment(image, instance_map):
        seen["augmented"] = image
        return real_augment(image, instance_map)

    def loss(spikes, other_view, **kwargs):
        seen["views"] = (spikes, other_view)
        return real_loss(spikes, other_view, **kwargs)

    monkeypatch.setattr(objective, "augment_pair", augment)
    monkeypatch.setattr(spike_contrastive_module, "spike_contrastive_loss", loss)
    run(with_weights(tiny_cfg, spike_contrastive=1.0), token_info, batch)
    assert seen["augmented"] is batch["image"]
    spikes, other = seen["views"]
    assert other is not None and other.shape == spikes.shape and not torch.equal(other, spikes)
