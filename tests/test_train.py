"""The training loop: a real tiny run, exact resume, NaN handling, one-line CLI errors."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys

import pytest
import torch

from ash_neuro import loop as loop_module
from ash_neuro import train as train_module
from ash_neuro.checkpoint import load_checkpoint
from ash_neuro.config import config_to_dict
from ash_neuro.data.datasets import retrieval_split
from ash_neuro.errors import CheckpointError, TrainingDiverged
from ash_neuro.models.factory import load_model
from tests.conftest import ROOT
from tests.retrieval_reference import itc_scores, recall


def with_train(cfg, **changes):
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **changes))


def log_records(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_tiny_run_learns_and_logs_every_loss(tiny_config, tmp_path):
    """12 steps (two epochs) at a raised learning rate: every logged loss is finite, the total
    falls, and the validation metrics are those of the checkpoint's own model on the first
    `eval_limit` val images (recomputed in NumPy, one image and caption at a time)."""
    cfg = with_train(tiny_config, max_steps=12, lr=1e-3)
    metrics = train_module.train(cfg, tmp_path)
    state = load_checkpoint(tmp_path / "ckpt.pt")
    assert state["progress"]["step"] == 12 and state["kind"] == "pretrain"
    assert state["config"] == config_to_dict(cfg) and state["task"] == {}
    records = log_records(tmp_path)
    steps = [r for r in records if "loss/total" in r]
    assert [r["step"] for r in steps] == list(range(1, 13))  # train.log_every=1
    names = ["itc", "itm", "mlm", "spike_contrastive", "stua", "spike_rate"]
    for record in steps:
        assert all(math.isfinite(record[f"loss/{name}"]) for name in [*names, "total"])
        assert {"spike_rate/lif1", "spike_rate/lif2"} <= set(record)
    totals = [r["loss/total"] for r in steps]
    first, last = sum(totals[:3]) / 3, sum(totals[-3:]) / 3
    assert last < first - 0.3, totals

    # the returned metrics: validated after each epoch, the last kept in the checkpoint
    validations = [r for r in records if "val/t2i_r1" in r]
    assert [r["step"] for r in validations] == [6, 12]
    assert metrics == state["metrics"]
    loaded = load_model(tmp_path / "ckpt.pt")
    data = retrieval_split(cfg.world.path, "val", limit=cfg.train.eval_limit)
    assert len(data.images) == 24
    scores = itc_scores(loaded.backbone, data, loaded.tokenizer, cfg.model.text.max_len)
    expected = recall(scores, data.txt2img.tolist(), data.img2txt)
    assert metrics["n"] == len(data.texts)  # the captions of those images
    assert metrics.keys() == {*expected, "n"}
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, abs=1e-4), key


class Killed(Exception):
    pass


def test_killed_run_resumes_to_the_same_weights(tiny_config, tmp_path, monkeypatch):
    cfg = with_train(tiny_config, max_steps=6, ckpt_every=3)
    train_module.train(cfg, tmp_path / "straight")
    reference = load_checkpoint(tmp_path / "straight" / "ckpt.pt")["model"]

    real_save = loop_module.save_checkpoint

    def save_then_die(state, path):
        real_save(state, path)
        raise Killed  # the process dies right after its step-3 checkpoint

    monkeypatch.setattr(loop_module, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        train_module.train(cfg, tmp_path / "killed")
    monkeypatch.setattr(loop_module, "save_checkpoint", real_save)
    assert load_checkpoint(tmp_path / "killed" / "ckpt.pt")["progress"]["step"] == 3
    train_module.train(cfg, tmp_path / "killed", resume=True)
    resumed = load_checkpoint(tmp_path / "killed" / "ckpt.pt")["model"]
    assert resumed.keys() == reference.keys()
    for key in reference:
        assert torch.equal(resumed[key], reference[key]), key
    # the resumed steps 4-6 saw the same batches and random draws: the same losses, exactly
    straight = [r for r in log_records(tmp_path / "straight") if "loss/total" in r]
    killed = [r for r in log_records(tmp_path / "killed") if "loss/total" in r]
    assert [r["step"] for r in killed] == [1, 2, 3, 4, 5, 6]
    for a, b in zip(straight, killed):
        assert {k: v for k, v in a.items() if k.startswith("loss/")} == {
            k: v for k, v in b.items() if k.startswith("loss/")
        }


def test_resuming_another_kind_of_run_or_another_network_is_refused(tiny_config, tmp_path):
    cfg = with_train(tiny_config, max_steps=1)
    train_module.train(cfg, tmp_path)
    wider = dataclasses.replace(
        cfg, model=dataclasses.replace(cfg.model, embed_dim=2 * cfg.model.embed_dim)
    )
    with pytest.raises(CheckpointError, match=r"different config \(model.embed_dim\)"):
        train_module.train(wider, tmp_path, resume=True)
    with pytest.raises(CheckpointError, match="is a pretrain checkpoint, this is a finetune run"):
        loop_module.resolve_resume(tmp_path, True, cfg, "finetune")


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_config, tmp_path, monkeypatch):
    cfg = with_train(tiny_config, max_steps=5, ckpt_every=1)
    real_forward = train_module.PretrainingObjective.forward
    calls = {"n": 0}

    def forward(self, batch):
        losses, rates = real_forward(self, batch)
        calls["n"] += 1
        if calls["n"] == 3:
            losses["total"] = losses["total"] * float("nan")
        return losses, rates

    monkeypatch.setattr(train_module.PretrainingObjective, "forward", forward)
    with pytest.raises(TrainingDiverged, match="loss became nan at step 3"):
        train_module.train(cfg, tmp_path)
    assert load_checkpoint(tmp_path / "ckpt.pt")["progress"]["step"] == 2


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ash_neuro.train", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["model.visal.dim=3"], "unknown config key 'model.visal'"),
        (["--config", "configs/nope.yaml"], "not found"),
        (["world.path=/nonexistent/world.h5"], "world file /nonexistent/world.h5 not found"),
    ],
)
def test_cli_bad_input_is_one_line(args, message, tmp_path):
    result = run_cli("--out", str(tmp_path), *args)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error:") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_resume_from_corrupt_checkpoint_is_one_line(tiny_world, tmp_path):
    (tmp_path / "ckpt.pt").write_bytes(b"\x00garbage")
    result = run_cli("--out", str(tmp_path), "--resume", f"world.path={tiny_world}")
    assert result.returncode == 2
    assert "not a readable ash-neuro checkpoint" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
