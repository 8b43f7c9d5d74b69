"""ViCHA as a method picked by config: configs/vicha.yaml pre-trains with its three parts,
fine-tunes and evaluates every task from that checkpoint, exports the spiking encoder with the
default's contract (the concept tokens stay out of it), and each part runs alone on top of
ASH-Nets."""

from __future__ import annotations

import json
import math

import pytest
import torch

from ash_neuro.checkpoint import load_checkpoint
from ash_neuro.config import load_config
from ash_neuro.data.concepts import with_concept_targets
from ash_neuro.data.datasets import CaptionDataset, Collator
from ash_neuro.data.tokenizer import load_world_tokenizer
from ash_neuro.data.world_file import WorldSource
from ash_neuro.errors import ConfigError
from ash_neuro.models.factory import build_model, load_model
from ash_neuro.nir_export.contract import read_sidecar
from ash_neuro.nir_export.from_checkpoint import export_checkpoint
from ash_neuro.objective import PretrainingObjective
from ash_neuro.train import train
from tests.conftest import ROOT, TINY_MODEL, TINY_TRAIN, TINY_WORLD, finetune_and_evaluate

TASKS = ("retrieval", "vqa", "nlvr", "ve", "grounding")
# two blocks in each encoder: H-ITC pairs block 1 with layer 1 (the embedded input cannot pair)
DEPTH = ["model.visual.depth=2", "model.text.depth=2"]
VICHA_LOSSES = ("hitc", "concept_tagging", "mim")


def vicha_config(world, *extra: str, config: str = "vicha.yaml"):
    overrides = [*TINY_WORLD, *TINY_MODEL, *DEPTH, *TINY_TRAIN, f"world.path={world}", *extra]
    return load_config(ROOT / "configs" / config, overrides)


@pytest.fixture(scope="module")
def vicha_run(tiny_world, tmp_path_factory):
    """Two pre-training steps of configs/vicha.yaml."""
    out = tmp_path_factory.mktemp("vicha")
    metrics = train(vicha_config(tiny_world, "train.max_steps=2"), out)
    return out, metrics


def logged_steps(out) -> list[dict]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if "loss/" in line]


def test_two_training_steps_of_configs_vicha(vicha_run):
    out, metrics = vicha_run
    state = load_checkpoint(out / "ckpt.pt")
    assert state["progress"]["step"] == 2
    model = state["config"]["model"]
    assert model["alignment"]["kind"] == "hierarchical" and model["mim"]["kind"] == "mae"
    # the scene vocabulary, filled at pre-training and kept by the checkpoint
    assert (
        len(model["concepts"]["vocabulary"]) == 20 and "hexagon" in model["concepts"]["vocabulary"]
    )
    steps = logged_steps(out)
    assert len(steps) == 2
    for record in steps:
        for name in ("itc", "itm", "mlm", "spike_contrastive", "stua", *VICHA_LOSSES, "total"):
            assert math.isfinite(record[f"loss/{name}"]), name
        assert record["spike_rate/lif1"] > 0
    # H-ITC aligns a block, not the embedded input: its loss is not the constant ln(batch)
    assert {round(r["loss/hitc"], 4) for r in steps} != {round(math.log(16), 4)}
    assert {"t2i_r1", "i2t_r1"} <= set(metrics)
    loaded = load_model(out / "ckpt.pt")
    words = loaded.backbone.concepts.piece_ids
    assert (words[:, 0] != loaded.tokenizer.pad_token_id).all()  # restored, not re-derived


def test_every_part_gets_a_gradient(vicha_run, tiny_world):
    """One batch through the objective: the tagger, the alignment heads and the decoder (its mask
    token included) all receive a gradient from the losses."""
    loaded = load_model(vicha_run[0] / "ckpt.pt")
    cfg, model = loaded.cfg, loaded.backbone.train()
    source = WorldSource(tiny_world, "train")
    dataset = with_concept_targets(CaptionDataset(source, "train"), cfg, source)
    batch = Collator(loaded.tokenizer, cfg.model.text.max_len)([dataset[i] for i in range(8)])
    losses, _ = PretrainingObjective(model, cfg.loss, loaded.tokenizer)(batch)
    assert set(VICHA_LOSSES) <= set(losses)
    losses["total"].backward()
    for part in (
        "concepts.tagger",
        "alignment.visual_proj",
        "alignment.text_proj",
        "image_decoder",
    ):
        grads = [p.grad for name, p in model.named_parameters() if name.startswith(part)]
        assert grads and all(g is not None and g.abs().sum() > 0 for g in grads), part


def test_the_concept_tokens_follow_the_spiking_tokens(vicha_run, tiny_world):
    loaded = load_model(vicha_run[0] / "ckpt.pt")
    model = loaded.backbone
    with torch.no_grad():
        visual = model.encode_image(torch.rand(3, 3, 32, 32))
    n = model.visual_concrete_encoder.n_tokens  # [CLS] + 16 patches
    assert visual.spikes.shape[2] == n  # the spiking encoder reads the ANN tokens alone
    assert visual.tokens.shape[1] == 2 * n + 8  # ANN, spike and 8 concept tokens
    assert visual.concept_logits.shape == (3, 20)
    assert [(g.start, g.stop) for g in visual.grids] == [(1, n), (n + 1, 2 * n)]


@pytest.mark.parametrize("task", TASKS)
def test_every_task_fine_tunes_and_evaluates(task, tiny_world, vicha_run, tmp_path):
    finetune_and_evaluate(vicha_run[0] / "ckpt.pt", tiny_world, task, tmp_path)


def test_export_keeps_the_defaults_contract(vicha_run, tiny_world, tmp_path):
    report = export_checkpoint(vicha_run[0] / "ckpt.pt", tmp_path / "encoder.nir", samples=3)
    contract = read_sidecar(report.path)
    assert contract.tokens_per_image == 17  # [CLS] + 16 patches, as the default's
    assert report.agreement["all"] == 1.0


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("hitc", ["model.alignment.kind=hierarchical", "loss.weights.hitc=0.1"]),
        ("concept_tagging", ["model.concepts.kind=tagged", "loss.weights.concept_tagging=1"]),
        ("mim", ["model.mim.kind=mae", "loss.weights.mim=1"]),
    ],
)
def test_each_part_alone_on_ash_nets(name, overrides, tiny_world, tmp_path):
    cfg = vicha_config(tiny_world, "train.max_steps=1", *overrides, config="default.yaml")
    train(cfg, tmp_path)
    (record,) = logged_steps(tmp_path)
    assert math.isfinite(record[f"loss/{name}"])
    assert not {f"loss/{other}" for other in VICHA_LOSSES if other != name} & set(record)


def test_captions_as_the_concept_source(tiny_world, tmp_path):
    cfg = vicha_config(
        tiny_world,
        "train.max_steps=1",
        "model.concepts.source=captions",
        "model.concepts.min_images=2",
    )
    train(cfg, tmp_path)
    words = load_checkpoint(tmp_path / "ckpt.pt")["config"]["model"]["concepts"]["vocabulary"]
    assert words and "the" not in words and "a" not in words
    assert math.isfinite(logged_steps(tmp_path)[0]["loss/concept_tagging"])


def test_a_weighted_part_without_its_component_is_one_line_error(tiny_world):
    cfg = vicha_config(tiny_world, "loss.weights.mim=1", config="default.yaml")
    tokenizer = load_world_tokenizer(tiny_world)
    model = build_model(cfg, len(tokenizer), tokenizer.pad_token_id)
    with pytest.raises(
        ConfigError, match="loss.weights.mim=1.0 needs the component model.mim.kind"
    ):
        PretrainingObjective(model, cfg.loss, tokenizer)


def test_layer_pairs_and_their_weights_must_match(tiny_world):
    with pytest.raises(ConfigError, match="one text layer per visual layer"):
        vicha_config(tiny_world, "model.alignment.visual_layers=[-2,-1]")
    with pytest.raises(ConfigError, match="needs one weight per aligned layer pair"):
        vicha_config(tiny_world, "loss.hitc_layer_weights=[1,1]")
