"""The user's path end to end, through the real commands: generate, train, export, Lava.

Slow (about a minute): run by `make test-slow` and CI.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from ash_neuro.data.datasets import retrieval_split
from ash_neuro.models.factory import load_model
from hardware.runner import run_on_lava
from tests.conftest import ROOT, TINY_MODEL, TINY_WORLD, require_lava

pytestmark = pytest.mark.slow


def run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_generate_train_export_and_run_on_lava(tmp_path):
    world, out = tmp_path / "world.h5", tmp_path / "run"
    config = str(ROOT / "configs" / "default.yaml")
    overrides = TINY_WORLD + TINY_MODEL + [f"world.path={world}", "train.device=cpu"]
    overrides += ["train.batch_size=16", "train.epochs=2", "train.eval_limit=24"]

    generate = ("-m", "ash_neuro.data.generate", "--config", config, *TINY_WORLD)
    assert "world: wrote" in run(*generate, "--out", str(world))
    assert "reusing" in run(*generate, "--out", str(world))

    train = ("-m", "ash_neuro.train", "--config", config, "--out", str(out), *overrides)
    run(*train)
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert sum("val/t2i_r1" in r for r in records) == 2  # validated after each epoch
    assert "is complete" in run(*train, "--resume")

    printed = run("export/to_nir.py", str(out / "ckpt.pt"))
    assert "100.00% of output spikes" in printed
    graph = out / "encoder.nir"
    assert graph.is_file() and (out / "encoder.nir.json").is_file()

    # The exported encoder on Lava (floating_pt) against the trained model's own Norse run,
    # on currents made from real test images by the checkpoint's visual encoder.
    require_lava()
    model = load_model(out / "ckpt.pt").backbone  # in eval mode
    encoder = model.semantic_abstract_encoder
    images = retrieval_split(world, "test", limit=3).images
    with torch.no_grad():
        currents = encoder.encode_input(model.visual_concrete_encoder(images).tokens)
        norse_spikes = encoder.run(currents)[0]
    # (T, rows, in) -> (samples = rows, T, in): each token row is one sample on Lava
    lava_spikes, activity = run_on_lava(graph, currents.permute(1, 0, 2).numpy())
    agreement = float((lava_spikes == norse_spikes.permute(1, 0, 2).numpy()).mean())
    assert norse_spikes.mean() > 0.01  # the comparison is not vacuous
    assert agreement == 1.0  # floating_pt reproduces Norse exactly
    assert set(activity) and all(np.all(a >= 0) for a in activity.values())
