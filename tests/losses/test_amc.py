"""AMC, associative mapping classification: the loss on a closed-form example worked by hand,
the anchors' pooled states, and the registered loss on a tiny CMAL network."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from ash_neuro.errors import AshError, ConfigError
from ash_neuro.losses.amc import AssociativeMappingClassification, amc_loss, anchor_states
from ash_neuro.models.factory import build_model
from ash_neuro.objective import ForwardPass
from tests.cmal_fixtures import TOKEN_INFO, cmal_batch, cmal_model, with_fusion

LN2 = math.log(2)


def test_closed_form_loss():
    # entity rows: logits (ln 2, 0, 0) -> softmax (1/2, 1/4, 1/4)
    logits = torch.tensor([[LN2, 0.0, 0.0], [LN2, 0.0, 0.0]])
    # row 0: target class 0 -> -ln 1/2 = ln 2; row 1: half class 0, half class 1 ->
    # -(ln 1/2 + ln 1/4) / 2 = 1.5 ln 2
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    # belongs rows: (0, 0) label 1 -> ln 2; (ln 3, 0) -> softmax (3/4, 1/4), label 0 -> ln 4/3
    belongs_logits = torch.tensor([[0.0, 0.0], [math.log(3), 0.0]])
    belongs = torch.tensor([1, 0])
    loss = amc_loss(logits, targets, belongs_logits, belongs)
    expected = (LN2 + 1.5 * LN2) / 2 + (LN2 + math.log(4 / 3)) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_no_fill_at_all_is_zero_with_a_gradient_path():
    logits = torch.zeros(0, 3, requires_grad=True)
    loss = amc_loss(
        logits,
        torch.zeros(0, 3),
        torch.zeros(0, 2, requires_grad=True),
        torch.zeros(0, dtype=torch.long),
    )
    assert loss.item() == 0.0 and loss.requires_grad


def test_an_anchors_state_is_the_mean_of_its_tokens():
    states = torch.arange(12.0).view(1, 4, 3)  # rows (0 1 2), (3 4 5), (6 7 8), (9 10 11)
    pooled = anchor_states(states, torch.tensor([[-1, 0, 0, 1]]), 3)
    assert pooled.tolist() == [[[4.5, 5.5, 6.5], [9.0, 10.0, 11.0], [0.0, 0.0, 0.0]]]


def amc(model, cfg, batch):
    forward = ForwardPass(model, batch, cfg.loss, TOKEN_INFO)
    return AssociativeMappingClassification(cfg.loss)(forward)


def test_the_registered_loss_trains_both_encoders_through_the_hybrid_prompt():
    model, cfg = cmal_model()
    torch.manual_seed(0)
    loss = amc(model, cfg, cmal_batch())
    # at initialisation: about ln 15 for the entity and ln 2 for belongs
    assert loss.item() == pytest.approx(math.log(15) + LN2, abs=1.0)
    loss.backward()
    encoder = model.fusion_encoder
    for name, parameter in (
        ("AMC entity", encoder.amc.entity.weight),
        ("AMC belongs", encoder.amc.belongs.weight),
        ("visual sphere", encoder.visual_sphere.proj.weight),
        ("text sphere", encoder.text_sphere.proj.weight),
        ("visual input map", encoder.from_visual.weight),
        ("spiking encoder", next(model.semantic_abstract_encoder.parameters())),
        ("text encoder", model.text_encoder.model.embeddings.word_embeddings.weight),
    ):
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_a_batch_without_anchor_contributes_nothing():
    model, cfg = cmal_model()
    batch = cmal_batch()
    batch["anchor_token"] = torch.full_like(batch["anchor_token"], -1)
    batch["anchor_entity"] = torch.full_like(batch["anchor_entity"], -1)
    assert amc(model, cfg, batch).item() == 0.0


def test_what_the_loss_needs_is_a_one_line_error():
    model, cfg = cmal_model()
    batch = cmal_batch()
    small = with_fusion(cfg, amc_entities=10)
    with pytest.raises(
        ConfigError, match=r"15 entities; set model.fusion.amc_entities=15 \(it is 10"
    ):
        amc(build_model(small, 40), small, batch)
    no_anchors = {k: v for k, v in batch.items() if not k.startswith(("anchor", "object"))}
    with pytest.raises(AshError, match="AnchorCollator"):
        amc(model, cfg, no_anchors)
    patches = dataclasses.replace(cfg.model.visual, kind="vit")
    vit = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, visual=patches))
    with pytest.raises(AshError, match="one visual token per object"):
        amc(build_model(vit, 40), vit, batch)
