"""The model factory: a checkpoint rebuilds its network alone; components plug in by registry."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import nir
import numpy as np
import pytest
import torch
from torch import Tensor, nn

from ash_neuro.checkpoint import save_checkpoint
from ash_neuro.config import AdapterConfig, load_config
from ash_neuro.data.generate import generate_world
from ash_neuro.errors import CheckpointError, ConfigError
from ash_neuro.finetune import finetune, finetune_config
from ash_neuro.losses.base import Loss
from ash_neuro.models.factory import load_model
from ash_neuro.models.outputs import TokenGrid
from ash_neuro.registry import ADAPTERS, LOSSES, VISUAL_ENCODERS
from ash_neuro.train import train
from tests.conftest import ROOT, TINY_MODEL, TINY_TRAIN, TINY_WORLD
from tests.data.readers import reader_fixtures


def tiny(world, *extra: str):
    overrides = [*TINY_WORLD, *TINY_MODEL, *TINY_TRAIN, f"world.path={world}", *extra]
    return load_config(ROOT / "configs" / "default.yaml", overrides)


def run(args: list[str], cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300
    )


def test_a_checkpoint_rebuilds_its_model_alone_from_another_directory(tmp_path):
    """Done-when of the factory issue: with only a checkpoint at hand (its world deleted), from
    a directory that is not the repository, export and evaluation on a real-format data set
    work, and evaluating on other data than the training data is stated."""
    world = tmp_path / "world" / "world.h5"
    cfg = tiny(world, "train.max_steps=2")
    generate_world(cfg.world, world)
    train(cfg, tmp_path / "pre")
    ft_cfg, loaded = finetune_config(
        ROOT / "configs" / "finetune.yaml",
        [*TINY_TRAIN, "finetune.task=vqa", "train.max_steps=2"],
        tmp_path / "pre" / "ckpt.pt",
    )
    finetune(ft_cfg, tmp_path / "ft", tmp_path / "pre" / "ckpt.pt", loaded=loaded)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(tmp_path / "ft" / "ckpt.pt", elsewhere / "ckpt.pt")
    shutil.rmtree(tmp_path / "world")  # the world file and its tokenizer are gone
    reader_fixtures.vqa_v2(tmp_path / "vqa")

    exported = run([str(ROOT / "export" / "to_nir.py"), "ckpt.pt"], cwd=elsewhere)
    assert exported.returncode == 0, exported.stderr
    assert "uniform random" in exported.stdout  # its world is gone: random sample images
    graph = nir.read(elsewhere / "encoder.nir")
    state = torch.load(elsewhere / "ckpt.pt", weights_only=True)
    # the graph carries the fine-tuned weights, not a fresh initialisation
    first = state["model"]["backbone.semantic_abstract_encoder.network.0.weight"].numpy()
    assert any(
        isinstance(n, nir.Affine) and np.array_equal(n.weight, first) for n in graph.nodes.values()
    )

    evaluated = run(
        ["-m", "ash_neuro.evaluate", "ckpt.pt", "--split", "train", "data.kind=vqa_v2",
         f"data.root={tmp_path / 'vqa'}", "train.device=cpu"],
        cwd=elsewhere,
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads((elsewhere / "eval_vqa_train.json").read_text())
    assert report["n_examples"] == 4  # the fixture's four train questions
    assert report["data"]["same"] is False
    assert "vqa_v2" in report["data"]["evaluated_on"] and "world" in report["data"]["trained_on"]
    assert "not the training data" in evaluated.stdout


class ToyGateAdapter(nn.Module):
    """A test-only adapter: ANN tokens scaled by a learned gate, spike rates appended."""

    def __init__(self, cfg: AdapterConfig, dim: int, spike_dim: int | None) -> None:
        super().__init__()
        self.gate = nn.Parameter(torch.full((dim,), 0.5))
        self.spike_proj = nn.Linear(spike_dim, dim)
        self.token_sets = 2

    def forward(self, features, spiking):
        rates = self.spike_proj(spiking.spikes.mean(dim=0))
        n = features.tokens.shape[1]
        grid = features.grid
        grids = (grid, dataclasses.replace(grid, start=grid.start + n))
        return torch.cat([self.gate * features.tokens, rates], dim=1), grids


class ToySpikeCountLoss(Loss):
    """A test-only loss: the mean output spike count per token (pushes spikes down)."""

    needs = frozenset({"spikes"})

    def __call__(self, forward) -> Tensor:
        return forward.visual.spikes.sum(dim=0).mean()


@pytest.fixture
def toy_components():
    ADAPTERS.register("toy_gate")(ToyGateAdapter)
    LOSSES.register("toy_spike_count")(ToySpikeCountLoss)
    yield
    ADAPTERS.unregister("toy_gate")
    LOSSES.unregister("toy_spike_count")


def test_a_loss_and_an_adapter_registered_outside_the_package_train(
    toy_components, tiny_world, tmp_path
):
    cfg = tiny(
        tiny_world,
        "train.max_steps=2",
        "model.adapter.kind=toy_gate",
        "loss.weights.toy_spike_count=0.5",
    )
    assert list(cfg.loss.weights)[-1] == "toy_spike_count"  # merged over the defaults
    assert cfg.loss.weights["itc"] == 1.0
    train(cfg, tmp_path)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss/toy_spike_count" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for record in steps:
        assert np.isfinite(record["loss/toy_spike_count"]) and record["loss/toy_spike_count"] > 0
        others = sum(
            cfg.loss.weights[name] * record[f"loss/{name}"]
            for name in ("itc", "itm", "mlm", "spike_contrastive", "stua", "spike_rate")
        )
        assert record["loss/total"] == pytest.approx(
            others + 0.5 * record["loss/toy_spike_count"], rel=1e-5
        )
    loaded = load_model(tmp_path / "ckpt.pt")
    assert isinstance(loaded.backbone.adapter, ToyGateAdapter)
    gate = loaded.backbone.adapter.gate.detach()
    assert not torch.equal(gate, torch.full_like(gate, 0.5))  # it trained


def test_unknown_kinds_are_one_line_errors_listing_the_registered(tiny_world, tmp_path):
    with pytest.raises(ConfigError, match=r"model.visual.kind: unknown visual encoder 'vitt'; "):
        train(tiny(tiny_world, "model.visual.kind=vitt"), tmp_path / "a")
    assert "vit" in VISUAL_ENCODERS.names()
    registered = (
        "amc, concept_tagging, hitc, itc, itm, mim, mlm, neuron_rate, spike_contrastive, "
        "spike_rate, stl, stua, text_sphere, visual_sphere"
    )
    with pytest.raises(
        ConfigError, match=f"loss.weights: unknown loss 'itcc'; registered: {registered}"
    ):
        train(tiny(tiny_world, "loss.weights.itcc=1"), tmp_path / "b")
    with pytest.raises(ConfigError, match=r"is retired: use model.spiking.kind=none"):
        tiny(tiny_world, "model.hybrid=false")


def test_the_ann_only_network_has_no_spiking_part_and_skips_spiking_losses(tiny_world, tmp_path):
    cfg = tiny(tiny_world, "train.max_steps=1", "model.spiking.kind=none")
    train(cfg, tmp_path)
    loaded = load_model(tmp_path / "ckpt.pt")
    assert loaded.backbone.semantic_abstract_encoder is None
    assert not any("semantic_abstract_encoder" in k for k in loaded.state["model"])
    record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert {"loss/itc", "loss/itm", "loss/mlm"} <= set(record)
    assert not {"loss/stua", "loss/spike_contrastive", "loss/spike_rate"} & set(record)


def test_older_and_partial_checkpoints_are_one_line_errors(tmp_path):
    save_checkpoint({"config": {}, "model": {}}, tmp_path / "v2.pt")
    with pytest.raises(CheckpointError, match="lacks 'kind'"):
        load_model(tmp_path / "v2.pt")
    path = tmp_path / "v1.pt"
    torch.save({"format": "ash-neuro-checkpoint", "version": 1, "model": {}}, path)
    with pytest.raises(CheckpointError, match="checkpoint version 1, this ash-neuro reads"):
        load_model(path)


def test_a_pretraining_checkpoint_has_no_task_head(tiny_config, tmp_path):
    one_step = dataclasses.replace(tiny_config.train, max_steps=1)
    train(dataclasses.replace(tiny_config, train=one_step), tmp_path)
    with pytest.raises(CheckpointError, match="has no vqa head .fine-tune it first"):
        load_model(tmp_path / "ckpt.pt", task="vqa")
    with pytest.raises(ConfigError, match="overrides may not change the network"):
        load_model(tmp_path / "ckpt.pt", overrides=["model.visual.depth=3"])
    loaded = load_model(tmp_path / "ckpt.pt", overrides=["finetune.itm_rerank_k=4"])
    assert loaded.cfg.finetune.itm_rerank_k == 4 and loaded.model.name == "retrieval"
    assert loaded.backbone.adapter.token_sets == 2
    grids = loaded.backbone.encode_image(torch.rand(1, 3, 32, 32)).grids
    assert grids == (TokenGrid(1, 4, 4), TokenGrid(18, 4, 4))  # 17 ANN tokens, then spikes
