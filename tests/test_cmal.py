"""CMAL as a method picked by config: configs/cmal.yaml pre-trains with anchor points from the
world's scenes, and every task fine-tunes and evaluates from its checkpoint; its spiking
encoder exports; a real data set with COCO instance tags or with none (the caption fallback)
pre-trains too."""

from __future__ import annotations

import json
import math

import pytest
import torch

from ash_neuro.checkpoint import load_checkpoint
from ash_neuro.config import load_config
from ash_neuro.data.anchors import AnchorCollator
from ash_neuro.models.factory import load_model
from ash_neuro.models.unified_encoder import UnifiedSemanticEncoder
from ash_neuro.nir_export.contract import read_sidecar
from ash_neuro.nir_export.from_checkpoint import export_checkpoint
from ash_neuro.train import train
from tests.conftest import ROOT, TINY_MODEL, TINY_TRAIN, TINY_WORLD, finetune_and_evaluate
from tests.data.readers import reader_fixtures

TASKS = ("retrieval", "vqa", "nlvr", "ve", "grounding")
CMAL_LOSSES = ("visual_sphere", "text_sphere", "amc")


def cmal_config(world, *extra: str):
    overrides = [*TINY_WORLD, *TINY_MODEL, *TINY_TRAIN, f"world.path={world}", *extra]
    return load_config(ROOT / "configs" / "cmal.yaml", overrides)


@pytest.fixture(scope="module")
def cmal_run(tiny_world, tmp_path_factory):
    """Two pre-training steps of configs/cmal.yaml, counting the anchors AMC was given."""
    out = tmp_path_factory.mktemp("cmal")
    anchors = []
    real = AnchorCollator.__call__

    def counting(self, items):
        batch = real(self, items)
        anchors.append(int((batch["anchor_entity"] >= 0).sum()))
        return batch

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(AnchorCollator, "__call__", counting)
        metrics = train(cmal_config(tiny_world, "train.max_steps=2"), out)
    return out, metrics, anchors


def test_two_training_steps_of_configs_cmal(cmal_run):
    out, metrics, anchors = cmal_run
    state = load_checkpoint(out / "ckpt.pt")
    assert state["progress"]["step"] == 2
    model = state["config"]["model"]
    assert model["fusion"]["kind"] == "unified" and model["fusion"]["amc_entities"] == 15
    assert model["visual"]["kind"] == "panoptic_instances" and model["adapter"]["kind"] == "ratio"
    assert len(anchors) == 2 and min(anchors) >= 16  # the world's captions name its objects
    lines = (out / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(line) for line in lines if "loss/" in line]
    assert len(steps) == 2
    for record in steps:
        for name in ("itc", "itm", "mlm", "spike_contrastive", "stua", *CMAL_LOSSES, "total"):
            assert math.isfinite(record[f"loss/{name}"]), name
        assert record["spike_rate/lif1"] > 0
    assert {"t2i_r1", "i2t_r1"} <= set(metrics)
    loaded = load_model(out / "ckpt.pt")
    assert isinstance(loaded.backbone.fusion_encoder, UnifiedSemanticEncoder)
    initial = torch.zeros_like(loaded.backbone.fusion_encoder.amc.belongs.bias)
    assert not torch.equal(loaded.backbone.fusion_encoder.amc.belongs.bias, initial)


@pytest.mark.parametrize("task", TASKS)
def test_every_task_fine_tunes_and_evaluates_from_a_cmal_checkpoint(
    task, tiny_world, cmal_run, tmp_path
):
    finetune_and_evaluate(cmal_run[0] / "ckpt.pt", tiny_world, task, tmp_path)


def test_the_spiking_encoder_over_the_objects_exports(cmal_run, tmp_path):
    report = export_checkpoint(cmal_run[0] / "ckpt.pt", tmp_path / "encoder.nir", samples=3)
    assert read_sidecar(report.path).tokens_per_image == 8  # one row per instance


@pytest.mark.parametrize("instances", [True, False], ids=["coco-tags", "caption-fallback"])
def test_coco_captions_pre_train_with_their_tags_or_the_fallback(tiny_world, tmp_path, instances):
    """COCO Karpathy captions: with instances.json the anchors are COCO categories located by
    box on the k-means segments; without it, every COCO word of a caption on the whole image.
    (visual_sphere pairs instances across two views and needs panoptic maps: off here.)"""
    root = tmp_path / "coco"
    reader_fixtures.karpathy_coco(root)
    data = ["data.kind=coco", f"data.root={root}"]
    if instances:
        reader_fixtures.coco_instances(root)
        data.append("data.instances=instances.json")
    cfg = cmal_config(
        tiny_world,
        *data,
        "train.max_steps=1",
        "train.batch_size=3",
        "train.eval_limit=2",
        "loss.weights.visual_sphere=0",
        "model.fusion.amc_entities=80",
    )
    batches = []
    real = AnchorCollator.__call__

    def keep(self, items):
        batch = real(self, items)
        batches.append(batch)
        return batch

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(AnchorCollator, "__call__", keep)
        train(cfg, tmp_path / "run")
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert math.isfinite(record["loss/amc"]) and "loss/visual_sphere" not in record
    located = batches[0]["anchor_objects"].any(dim=-1)[batches[0]["anchor_entity"] >= 0]
    assert len(located) > 0
    assert bool(located.all()) if instances else not bool(located.any())


def test_the_ann_only_cmal_drops_the_spiking_encoder(tiny_world, tmp_path):
    """Where the spiking encoder fits is a config choice: `model.spiking.kind=none` is CMAL as
    the paper has it, with no spiking layer to log or export."""
    train(cmal_config(tiny_world, "train.max_steps=1", "model.spiking.kind=none"), tmp_path)
    record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert math.isfinite(record["loss/amc"]) and math.isfinite(record["loss/visual_sphere"])
    assert not any(key.startswith("spike_rate/") for key in record)
    model = load_model(tmp_path / "ckpt.pt")
    assert not model.backbone.hybrid
