"""A ViCHA checkpoint on Lava: its visual concepts join after the spiking encoder, so the
exported encoder is the default's (same contract, 17 rows per tiny image), runs in floating_pt
in 100% agreement with Norse, and every task metric equals the plain PyTorch evaluation."""

from __future__ import annotations

import pytest

from ash_neuro.config import load_config
from ash_neuro.data.concepts import with_concept_vocabulary
from ash_neuro.data.sources import configured_source
from tests.conftest import ROOT, TINY_MODEL, TINY_TRAIN, TINY_WORLD
from tests.hardware.test_deploy import deploy_equal_to_norse_and_evaluate, make_run


@pytest.fixture
def vicha_config(tiny_world):
    overrides = [*TINY_WORLD, *TINY_MODEL, *TINY_TRAIN, f"world.path={tiny_world}"]
    overrides += ["model.visual.depth=2", "model.text.depth=2"]
    cfg = load_config(ROOT / "configs" / "vicha.yaml", overrides)
    return with_concept_vocabulary(cfg, configured_source(cfg, "train"))


@pytest.mark.parametrize("task", ["retrieval", "grounding"])
def test_vicha_deploys_with_full_agreement(lava, vicha_config, tmp_path, task):
    ckpt, graph = make_run(tmp_path, vicha_config, task=None if task == "retrieval" else task)
    record = deploy_equal_to_norse_and_evaluate(ckpt, graph, task)
    assert record.rows_per_image == 17  # [CLS] + 16 patches: the concept tokens are not rows
