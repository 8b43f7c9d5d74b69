"""GSHN as a method picked by config: configs/gshn.yaml pre-trains, fine-tunes and evaluates
every task on the tiny world with the world's panoptic maps reaching the instance encoder
everywhere it reads images, and falls back to k-means segments on a data set without maps."""

from __future__ import annotations

import json
import math

import pytest
import torch

from ash_neuro.checkpoint import load_checkpoint
from ash_neuro.config import load_config
from ash_neuro.evaluate import evaluate_checkpoint
from ash_neuro.models.factory import load_model
from ash_neuro.models.panoptic_instance_encoder import PanopticInstanceEncoder
from ash_neuro.nir_export.contract import read_sidecar
from ash_neuro.nir_export.from_checkpoint import export_checkpoint
from ash_neuro.train import train
from tests.conftest import ROOT, TINY_MODEL, TINY_TRAIN, TINY_WORLD, finetune_and_evaluate
from tests.data.readers import reader_fixtures

TASKS = ("retrieval", "vqa", "nlvr", "ve", "grounding")


def gshn_config(world, *extra: str):
    overrides = [*TINY_WORLD, *TINY_MODEL, *TINY_TRAIN, f"world.path={world}", *extra]
    return load_config(ROOT / "configs" / "gshn.yaml", overrides)


def forbid_fallback(patch: pytest.MonkeyPatch) -> None:
    """Fail if the instance encoder segments an image itself: the world's maps must reach it."""

    def forbidden(self, patch_tokens):
        raise AssertionError("the instance encoder got no panoptic map")

    patch.setattr(PanopticInstanceEncoder, "fallback_map", forbidden)


@pytest.fixture
def no_fallback(monkeypatch):
    forbid_fallback(monkeypatch)


@pytest.fixture(scope="module")
def gshn_run(tiny_world, tmp_path_factory):
    """Two pre-training steps of configs/gshn.yaml, every image with its panoptic map."""
    out = tmp_path_factory.mktemp("gshn")
    with pytest.MonkeyPatch.context() as patch:
        forbid_fallback(patch)
        metrics = train(gshn_config(tiny_world, "train.max_steps=2"), out)
    return out, metrics


def test_two_training_steps_of_configs_gshn(gshn_run):
    out, metrics = gshn_run
    state = load_checkpoint(out / "ckpt.pt")
    assert state["progress"]["step"] == 2
    model = state["config"]["model"]
    assert model["visual"]["kind"] == "panoptic_instances" and model["graph"]["kind"] == "gat"
    assert model["adapter"]["kind"] == "ratio"
    lines = (out / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(line) for line in lines if "loss/" in line]
    assert len(steps) == 2
    for record in steps:
        for name in ("itc", "itm", "mlm", "spike_contrastive", "stl", "spike_rate", "total"):
            assert math.isfinite(record[f"loss/{name}"]), name
        assert "loss/stua" not in record  # STL replaces STUA
        assert record["spike_rate/lif1"] > 0
    assert {"t2i_r1", "i2t_r1"} <= set(metrics)  # validation retrieval ran on instance maps
    loaded = load_model(out / "ckpt.pt")
    ratio = loaded.backbone.adapter.ratio
    assert ratio.item() != 1.0  # r learned (it starts at ratio_init = 1)
    assert loaded.backbone.visual_concrete_encoder.n_tokens == 8


@pytest.mark.parametrize("task", TASKS)
def test_every_task_fine_tunes_and_evaluates_on_instance_maps(
    task, tiny_world, gshn_run, tmp_path, no_fallback
):
    finetune_and_evaluate(gshn_run[0] / "ckpt.pt", tiny_world, task, tmp_path)


def test_export_samples_carry_their_instance_maps(gshn_run, tmp_path, no_fallback):
    report = export_checkpoint(gshn_run[0] / "ckpt.pt", tmp_path / "encoder.nir", samples=3)
    contract = read_sidecar(report.path)
    assert contract.tokens_per_image == 8  # K instance rows per image
    assert "validation images" in report.samples and "(3, 24, 32)" in report.samples


def test_a_data_set_without_panoptic_maps_uses_the_kmeans_fallback(gshn_run, tmp_path):
    reader_fixtures.karpathy_coco(tmp_path / "coco")
    calls = []
    real = PanopticInstanceEncoder.fallback_map

    def spy(self, patch_tokens):
        calls.append(patch_tokens.shape[0])
        return real(self, patch_tokens)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(PanopticInstanceEncoder, "fallback_map", spy)
        report = evaluate_checkpoint(
            gshn_run[0] / "ckpt.pt",
            "retrieval",
            split="train",
            overrides=["data.kind=coco", f"data.root={tmp_path / 'coco'}", "train.device=cpu"],
        )
    assert calls and report["data"]["same"] is False
    assert all(math.isfinite(v) for v in report["metrics"].values())


def test_instance_maps_change_what_the_encoder_sees(gshn_run, tiny_world):
    """The same images with their panoptic maps and with the fallback give other tokens."""
    from ash_neuro.data.datasets import instance_maps, open_source

    loaded = load_model(gshn_run[0] / "ckpt.pt")
    source = open_source(tiny_world, "test")
    images = torch.stack(
        [torch.from_numpy(source.image(i)).permute(2, 0, 1).float() / 255 for i in range(4)]
    )
    with torch.no_grad():
        with_maps = loaded.backbone.encode_image(images, instance_maps(source, 4))
        without = loaded.backbone.encode_image(images)
    assert torch.equal(with_maps.features.segments, instance_maps(source, 4))
    assert not torch.equal(with_maps.features.segments, without.features.segments)
