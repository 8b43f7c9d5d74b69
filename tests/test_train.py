"""The training loop: a real tiny run, exact resume, NaN handling, one-line CLI errors."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
import torch

from ash_neuro import loop as loop_module
from ash_neuro import train as train_module
from ash_neuro.checkpoint import load_checkpoint
from ash_neuro.errors import TrainingDiverged
from tests.conftest import ROOT


def with_train(cfg, **changes):
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **changes))


def test_tiny_run_writes_checkpoint_log_and_metrics(tiny_config, tmp_path):
    metrics = train_module.train(with_train(tiny_config, max_steps=4), tmp_path)
    state = load_checkpoint(tmp_path / "ckpt.pt")
    assert state["progress"]["step"] == 4
    assert {"t2i_r1", "i2t_r10"} <= set(metrics)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = {k for r in records for k in r if k.startswith("loss/")}
    assert {"loss/itc", "loss/itm", "loss/mlm", "loss/spike_contrastive", "loss/stua"} <= losses
    assert any(k.startswith("spike_rate/") for r in records for k in r)


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
