"""A CMAL checkpoint on Lava: its spiking encoder over the visual objects (K instance rows per
image) exported to NIR and run in floating_pt agrees 100% with Norse, and the tasks the paper
stresses (visual entailment, referring expressions) read the same metrics through the unified
semantic encoder as the plain PyTorch evaluation."""

from __future__ import annotations

import pytest

from ash_neuro.config import load_config
from ash_neuro.deploy.run import deploy
from ash_neuro.evaluate import evaluate_checkpoint
from tests.conftest import ROOT, TINY_MODEL, TINY_TRAIN, TINY_WORLD
from tests.hardware.test_deploy import make_run


@pytest.fixture
def cmal_config(tiny_world):
    overrides = [*TINY_WORLD, *TINY_MODEL, *TINY_TRAIN, f"world.path={tiny_world}"]
    return load_config(ROOT / "configs" / "cmal.yaml", overrides)


@pytest.mark.parametrize("task", ["ve", "grounding"])
def test_cmal_deploys_with_full_agreement(lava, cmal_config, tmp_path, task):
    ckpt, graph = make_run(tmp_path, cmal_config, task=task)
    record = deploy(ckpt, graph, task, limit=6, modes=("floating_pt",), device="cpu")[0]
    assert record.rows_per_image == 8  # K instance rows per image, padded ones included
    assert sum(record.norse.firing_rates.values()) > 0  # not a vacuous comparison
    floating = record.modes["floating_pt"]
    assert dict(floating.agreement.layers) == {"lif1": 1.0, "lif2": 1.0}
    assert floating.agreement.overall == 1.0
    assert floating.metrics == record.norse.metrics
    plain = evaluate_checkpoint(ckpt, task, split="test", limit=6, overrides=["train.device=cpu"])
    assert record.n_examples == plain["n_examples"] > 0
    for key, value in plain["metrics"].items():
        assert record.norse.metrics[key] == pytest.approx(value, abs=1e-6)
