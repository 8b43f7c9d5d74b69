"""A GSHN checkpoint on Lava: its spiking encoder over instance rows (K per image) exported to
NIR and run in floating_pt agrees 100% with Norse, and the tasks read the same metrics as the
plain PyTorch evaluation; the world's panoptic maps reach the export and the deployment."""

from __future__ import annotations

import pytest

from ash_neuro.config import load_config
from ash_neuro.models.panoptic_instance_encoder import PanopticInstanceEncoder
from tests.conftest import ROOT, TINY_MODEL, TINY_TRAIN, TINY_WORLD
from tests.hardware.test_deploy import deploy_equal_to_norse_and_evaluate, make_run


@pytest.fixture
def gshn_config(tiny_world):
    overrides = [*TINY_WORLD, *TINY_MODEL, *TINY_TRAIN, f"world.path={tiny_world}"]
    return load_config(ROOT / "configs" / "gshn.yaml", overrides)


@pytest.mark.parametrize("task", ["retrieval", "grounding"])
def test_gshn_deploys_with_full_agreement(lava, gshn_config, tmp_path, monkeypatch, task):
    def forbidden(self, patch_tokens):
        raise AssertionError("the instance encoder got no panoptic map")

    monkeypatch.setattr(PanopticInstanceEncoder, "fallback_map", forbidden)
    ckpt, graph = make_run(tmp_path, gshn_config, task=None if task == "retrieval" else task)
    record = deploy_equal_to_norse_and_evaluate(ckpt, graph, task)
    assert record.rows_per_image == 8  # K instance rows per image, padded ones included
