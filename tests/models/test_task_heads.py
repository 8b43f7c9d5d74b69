"""Task heads and the task model: output shapes, box pooling, masking and gradients."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ash_neuro.errors import ConfigError
from ash_neuro.models.factory import build_task_model
from ash_neuro.models.task_heads import (
    BoxScoringHead,
    ClassifierHead,
    box_features,
    pool_regions,
    pool_segments,
)
from tests.models.conftest import IMAGE_SIZE, PAD, VOCAB, make_batch

ANSWERS = tuple(f"answer{i}" for i in range(7))
N_ANSWERS = len(ANSWERS)
B, K = 6, 4


def task_batch(task: str) -> dict[str, torch.Tensor]:
    batch = make_batch(batch=B)
    batch["image_id"] = torch.arange(B)
    g = torch.Generator().manual_seed(1)
    if task == "vqa":
        batch["answer_scores"] = torch.rand(B, N_ANSWERS, generator=g).round()
    elif task == "nlvr":
        batch["image_b"] = torch.rand(B, 3, IMAGE_SIZE, IMAGE_SIZE, generator=g)
        batch["image_id_b"] = torch.arange(B, 2 * B)
    elif task == "grounding":
        corner = torch.rand(B, K, 2, generator=g) * 0.5
        batch["candidate_boxes"] = torch.cat([corner, corner + 0.3], dim=-1)
        batch["candidate_mask"] = torch.arange(K) < torch.tensor([[4], [3], [2], [1], [4], [2]])
    return batch


def with_task(cfg, task: str):
    return dataclasses.replace(cfg, finetune=dataclasses.replace(cfg.finetune, task=task))


@pytest.mark.parametrize(
    ("task", "classes"), [("vqa", N_ANSWERS), ("ve", 3), ("nlvr", 2), ("grounding", K)]
)
@pytest.mark.parametrize("hybrid", [True, False])
def test_task_model_logits_and_gradients(tiny_cfg, task, classes, hybrid):
    cfg = with_task(tiny_cfg, task)
    spiking = dataclasses.replace(cfg.model.spiking, kind="lif_stack" if hybrid else "none")
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, spiking=spiking))
    model = build_task_model(cfg, VOCAB, PAD, answers=ANSWERS)
    assert model.name == task and model.answers == ANSWERS
    batch = task_batch(task)
    logits, rates = model(batch)
    assert logits.shape == (B, classes)
    assert bool(rates) == hybrid
    if task == "grounding":
        assert torch.isinf(logits[~batch["candidate_mask"]]).all()
        assert torch.isfinite(logits[batch["candidate_mask"]]).all()
        target = torch.zeros(B, dtype=torch.long)
    else:
        target = torch.arange(B) % classes
    torch.nn.functional.cross_entropy(logits, target).backward()
    # the head and every backbone part on the task's path learn
    for name in ("head", "backbone.visual_concrete_encoder", "backbone.text_encoder"):
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(name)]
        assert grads and any(g is not None and g.abs().sum() > 0 for g in grads), name
    if hybrid:
        spiking = [p.grad for p in model.backbone.semantic_abstract_encoder.parameters()]
        assert any(g is not None and g.abs().sum() > 0 for g in spiking)


def test_retrieval_uses_the_backbone_heads_only(tiny_cfg):
    model = build_task_model(with_task(tiny_cfg, "retrieval"), VOCAB, PAD)
    assert model.head is None
    assert all(name.startswith("backbone.") for name in model.state_dict())
    with pytest.raises(ValueError, match="retrieval has no task head"):
        model(task_batch("retrieval"))


def test_unknown_task_is_refused(tiny_cfg):
    with pytest.raises(ConfigError, match="finetune.task: unknown task 'captioning'"):
        build_task_model(with_task(tiny_cfg, "captioning"), VOCAB, PAD)


def test_the_encode_hook_receives_every_image_of_the_example_with_its_index(tiny_cfg):
    """NLVR encodes the left images, then the right ones, through the hook, with their ids."""
    model = build_task_model(with_task(tiny_cfg, "nlvr"), VOCAB, PAD).eval()
    batch = task_batch("nlvr")
    seen = {}

    def encode(inputs):
        seen["images"], seen["ids"] = inputs.image, inputs.ids
        return model.backbone.encode_image(inputs.image)

    with torch.no_grad():
        hooked = model(batch, encode)[0]
        plain = model(batch)[0]
    assert torch.equal(seen["ids"], torch.arange(2 * B))
    assert torch.equal(seen["images"], torch.cat([batch["image"], batch["image_b"]]))
    torch.testing.assert_close(hooked, plain)


def test_nlvr_reads_both_images(tiny_cfg):
    """Another right image changes the logits: the head sees both images."""
    cfg = with_task(tiny_cfg, "nlvr")
    model = build_task_model(cfg, VOCAB, PAD).eval()
    batch = task_batch("nlvr")
    with torch.no_grad():
        logits = model(batch)[0]
        batch["image_b"] = torch.rand_like(batch["image_b"])
        assert not torch.allclose(logits, model(batch)[0])


def test_classifier_head_shapes():
    head = ClassifierHead(16, 5, hidden=8)
    assert head(torch.randn(3, 16)).shape == (3, 5)
    with pytest.raises(ValueError):
        ClassifierHead(16, 1, hidden=8)


def test_pool_regions_weights_by_covered_area():
    # a 2x2 grid of patch tokens with values 1, 2 (top row), 3, 4 (bottom row)
    tokens = torch.tensor([[[1.0], [2.0], [3.0], [4.0]]])
    boxes = torch.tensor(
        [
            [
                [0.0, 0.0, 0.5, 0.5],  # exactly the top-left patch
                [0.0, 0.0, 1.0, 1.0],  # everything: the mean
                [0.25, 0.0, 1.0, 0.5],  # a quarter of patch 1, all of patch 2: (1 + 2*2) / 3
                [0.1, 0.6, 0.2, 0.7],  # smaller than a patch, inside the bottom-left one
                [0.0, 0.0, 0.0, 0.0],  # padding
            ]
        ]
    )
    pooled = pool_regions(tokens, boxes)[0, :, 0]
    assert torch.allclose(pooled, torch.tensor([1.0, 2.5, 5 / 3, 3.0, 0.0]))


def test_box_features_add_centre_and_area():
    feats = box_features(torch.tensor([[0.2, 0.4, 0.6, 0.5]]))
    assert torch.allclose(feats, torch.tensor([[0.2, 0.4, 0.6, 0.5, 0.4, 0.45, 0.04]]))


def test_box_scoring_head_prefers_nothing_outside_the_mask():
    head = BoxScoringHead(width=8, region_dim=6)
    mask = torch.tensor([[True, True, False]])
    logits = head(torch.randn(1, 8), torch.randn(1, 3, 6), torch.rand(1, 3, 4), mask)
    assert logits.shape == (1, 3) and logits[0, 2] == float("-inf")
    assert torch.softmax(logits, dim=-1)[0, 2] == 0


def test_pool_segments_weights_by_the_box_area_each_segment_covers():
    # a 4x4 image: segment 0 the left half, 1 the top right quarter, 2 the bottom right quarter
    segments = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 2, 2], [0, 0, 2, 2]])[None]
    tokens = torch.tensor([[[1.0], [10.0], [100.0]]])
    boxes = torch.tensor(
        [
            [
                [0.5, 0.0, 1.0, 0.5],  # exactly segment 1
                [0.0, 0.0, 1.0, 1.0],  # everything: 8 pixels of 0, 4 of 1, 4 of 2
                [0.25, 0.25, 0.75, 0.75],  # 2x2 pixels: 2 of segment 0, 1 of 1, 1 of 2
                [0.375, 0.5, 0.625, 0.625],  # half a pixel of 0 and of 2 (fractional edges)
                [0.0, 0.0, 0.0, 0.0],  # padding
            ]
        ]
    )
    pooled = pool_segments(tokens, segments, boxes)[0, :, 0]
    expected = torch.tensor([10.0, (8 + 40 + 400) / 16, (2 + 10 + 100) / 4, 50.5, 0.0])
    torch.testing.assert_close(pooled, expected)


def test_pool_segments_of_patch_segments_is_pool_regions():
    torch.manual_seed(0)
    tokens = torch.randn(2, 4, 3)  # a 2x2 grid of patches of 4x4 pixels each
    patch = torch.tensor([[0, 1], [2, 3]]).repeat_interleave(4, 0).repeat_interleave(4, 1)
    corners = torch.rand(2, 5, 2, 2)  # two random points per box
    boxes = torch.cat([corners.min(dim=2).values, corners.max(dim=2).values], dim=-1)
    torch.testing.assert_close(
        pool_segments(tokens, patch.expand(2, -1, -1), boxes), pool_regions(tokens, boxes)
    )
