"""A CMAL checkpoint on Lava: its spiking encoder over the visual objects (K instance rows per
image) exported to NIR and run in floating_pt agrees 100% with Norse, and the tasks the paper
stresses (visual entailment, referring expressions) read the same metrics through the unified
semantic encoder as the plain PyTorch evaluation."""

from __future__ import annotations

import pytest

from ash_neuro.config import load_config
from tests.conftest import ROOT, TINY_MODEL, TINY_TRAIN, TINY_WORLD
from tests.hardware.test_deploy import deploy_equal_to_norse_and_evaluate, make_run


@pytest.fixture
def cmal_config(tiny_world):
    overrides = [*TINY_WORLD, *TINY_MODEL, *TINY_TRAIN, f"world.path={tiny_world}"]
    return load_config(ROOT / "configs" / "cmal.yaml", overrides)


@pytest.mark.parametrize("task", ["ve", "grounding"])
def test_cmal_deploys_with_full_agreement(lava, cmal_config, tmp_path, task):
    ckpt, graph = make_run(tmp_path, cmal_config, task=task)
    record = deploy_equal_to_norse_and_evaluate(ckpt, graph, task)
    assert record.rows_per_image == 8  # K instance rows per image, padded ones included
