"""The training loop: a real tiny run, exact resume, NaN handling, one-line CLI errors."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
import sys

import h5py
import pytest
import torch

from ash_neuro import loop as loop_module
from ash_neuro import train as train_module
from ash_neuro.checkpoint import load_checkpoint
from ash_neuro.config import config_to_dict
from ash_neuro.data.datasets import retrieval_split
from ash_neuro.data.generate import generate_world
from ash_neuro.data.sources import data_identity
from ash_neuro.data.tokenizer import tokenizer_path_for
from ash_neuro.errors import AshError, CheckpointError, TrainingDiverged
from ash_neuro.models.factory import load_model
from tests.conftest import ROOT, TINY_WORLD
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
    with pytest.raises(
        CheckpointError, match=r"another config \(model.embed_dim: checkpoint 16, this run 32\)"
    ):
        train_module.train(wider, tmp_path, resume=True)
    with pytest.raises(CheckpointError, match="is a pretrain checkpoint, this is a finetune run"):
        loop_module.resolve_resume(tmp_path, True, cfg, "finetune", data_identity(cfg))


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
    result = run_cli("--out", str(tmp_path), "--resume", f"world.path={tiny_world}", *TINY_WORLD)
    assert result.returncode == 2
    assert "not a readable ash-neuro checkpoint" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_resumed_log_holds_each_step_once(tiny_config, tmp_path, monkeypatch):
    """Killed at step 5 with its last checkpoint at step 3: steps 4 and 5 were logged and run
    again after the resume; the log keeps them once, as an uninterrupted run does."""
    cfg = with_train(tiny_config, max_steps=6, ckpt_every=3)
    real_forward = train_module.PretrainingObjective.forward
    calls = {"n": 0}

    def dies_at_step_5(self, batch):
        calls["n"] += 1
        if calls["n"] == 6:  # after step 5 was logged
            raise Killed
        return real_forward(self, batch)

    monkeypatch.setattr(train_module.PretrainingObjective, "forward", dies_at_step_5)
    with pytest.raises(Killed):
        train_module.train(cfg, tmp_path)
    monkeypatch.setattr(train_module.PretrainingObjective, "forward", real_forward)
    assert [r["step"] for r in log_records(tmp_path) if "loss/total" in r] == [1, 2, 3, 4, 5]
    train_module.train(cfg, tmp_path, resume=True)
    steps = [r["step"] for r in log_records(tmp_path) if "loss/total" in r]
    validations = [r["step"] for r in log_records(tmp_path) if "val/n" in r]
    assert steps == [1, 2, 3, 4, 5, 6] and validations == [6]


def test_resume_accepts_only_the_documented_changes(tiny_config, tmp_path):
    cfg = with_train(tiny_config, max_steps=2)
    train_module.train(cfg, tmp_path)
    for changed, shown in (
        (with_train(cfg, lr=1e-3), "train.lr: checkpoint 0.0003, this run 0.001"),
        (with_train(cfg, batch_size=8), "train.batch_size: checkpoint 16, this run 8"),
        (
            dataclasses.replace(
                cfg, loss=dataclasses.replace(cfg.loss, weights={**cfg.loss.weights, "mlm": 0.0})
            ),
            "loss.weights.mlm: checkpoint 1.0, this run 0.0",
        ),
    ):
        with pytest.raises(CheckpointError, match=f"another config \\({shown}\\); resume"):
            train_module.train(changed, tmp_path, resume=True)
    longer = with_train(cfg, max_steps=3, log_every=2, eval_limit=12)  # documented as safe
    train_module.train(longer, tmp_path, resume=True)
    assert load_checkpoint(tmp_path / "ckpt.pt")["progress"]["step"] == 3


def test_resume_on_another_world_is_refused(tiny_config, tmp_path):
    cfg = with_train(tiny_config, max_steps=1)
    train_module.train(cfg, tmp_path / "run")
    other = tmp_path / "other" / "world.h5"
    generate_world(dataclasses.replace(cfg.world, seed=7), other)
    world = dataclasses.replace(cfg.world, path=str(other), seed=7)
    with pytest.raises(CheckpointError, match=r"another config \(data: checkpoint [0-9a-f]{16}, "):
        train_module.train(dataclasses.replace(cfg, world=world), tmp_path / "run", resume=True)
    # a config that claims the checkpoint's world is checked against the file's content
    claimed = dataclasses.replace(world, seed=0)
    with pytest.raises(AshError, match=r"was generated with world.seed=7, this config says 0"):
        train_module.train(dataclasses.replace(cfg, world=claimed), tmp_path / "run", resume=True)


def nan_gradient_at(call: int, real_forward):
    """An objective whose loss stays finite while its gradient becomes NaN at `call`."""
    calls = {"n": 0}

    def forward(self, batch):
        losses, rates = real_forward(self, batch)
        calls["n"] += 1
        if calls["n"] == call:
            weight = self.model.itc.temp
            # 0 * sqrt(0 * w): 0 forward; backward 0 * inf * 0 = NaN
            losses["total"] = losses["total"] + 0.0 * torch.sqrt(0.0 * weight)
        return losses, rates

    return forward


def test_a_nonfinite_gradient_stops_before_any_checkpoint_takes_it(
    tiny_config, tmp_path, monkeypatch
):
    cfg = with_train(tiny_config, max_steps=5, ckpt_every=1)
    forward = nan_gradient_at(3, train_module.PretrainingObjective.forward)
    monkeypatch.setattr(train_module.PretrainingObjective, "forward", forward)
    with pytest.raises(TrainingDiverged, match="the gradient became nan at step 3"):
        train_module.train(cfg, tmp_path)
    state = load_checkpoint(tmp_path / "ckpt.pt")  # refuses non-finite weights
    assert state["progress"]["step"] == 2


def test_a_nonfinite_gradient_can_be_skipped(tiny_config, tmp_path, monkeypatch):
    cfg = with_train(tiny_config, max_steps=4, nonfinite_grad="skip")
    forward = nan_gradient_at(2, train_module.PretrainingObjective.forward)
    monkeypatch.setattr(train_module.PretrainingObjective, "forward", forward)
    train_module.train(cfg, tmp_path)
    state = load_checkpoint(tmp_path / "ckpt.pt")
    assert state["progress"]["step"] == 4 and state["progress"]["skipped"] == 1
    skipped = [r.get("grad/skipped_steps", 0) for r in log_records(tmp_path) if "loss/total" in r]
    assert skipped == [0, 1, 1, 1]


def test_a_world_of_another_config_or_truncated_stops_before_training(tiny_config, tmp_path):
    cfg = with_train(tiny_config, max_steps=1)
    bigger = dataclasses.replace(cfg, world=dataclasses.replace(cfg.world, image_size=64))
    with pytest.raises(AshError, match=r"generated with world.image_size=32, this config says 64"):
        train_module.train(bigger, tmp_path / "a")
    assert not (tmp_path / "a").exists()  # nothing was set up
    truncated = tmp_path / "world.h5"
    shutil.copy(cfg.world.path, truncated)
    shutil.copy(tokenizer_path_for(cfg.world.path), tokenizer_path_for(truncated))
    with h5py.File(truncated, "a") as f:
        images = f["val/images"][:-1]
        del f["val/images"]
        f["val/images"] = images
    cut = dataclasses.replace(cfg, world=dataclasses.replace(cfg.world, path=str(truncated)))
    with pytest.raises(AshError, match=r"/val/images holds 23 of 24 images; the file is trunc"):
        train_module.train(cut, tmp_path / "b")
