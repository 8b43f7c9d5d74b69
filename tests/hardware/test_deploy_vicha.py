"""A ViCHA checkpoint on Lava: its visual concepts join after the spiking encoder, so the
exported encoder is the default's (same contract, 17 rows per tiny image), runs in floating_pt
in 100% agreement with Norse, and every task metric equals the plain PyTorch evaluation."""

from __future__ import annotations

import pytest

from ash_neuro.config import load_config
from ash_neuro.data.concepts import with_concept_vocabulary
from ash_neuro.data.sources import configured_source
from ash_neuro.deploy.run import deploy
from ash_neuro.evaluate import evaluate_checkpoint
from tests.conftest import ROOT, TINY_MODEL, TINY_TRAIN, TINY_WORLD
from tests.hardware.test_deploy import make_run


@pytest.fixture
def vicha_config(tiny_world):
    overrides = [*TINY_WORLD, *TINY_MODEL, *TINY_TRAIN, f"world.path={tiny_world}"]
    overrides += ["model.visual.depth=2", "model.text.depth=2"]
    cfg = load_config(ROOT / "configs" / "vicha.yaml", overrides)
    return with_concept_vocabulary(cfg, configured_source(cfg, "train"))


@pytest.mark.parametrize("task", ["retrieval", "grounding"])
def test_vicha_deploys_with_full_agreement(lava, vicha_config, tmp_path, task):
    ckpt, graph = make_run(tmp_path, vicha_config, task=None if task == "retrieval" else task)
    record = deploy(ckpt, graph, task, limit=6, modes=("floating_pt",), device="cpu")[0]
    assert record.rows_per_image == 17  # [CLS] + 16 patches: the concept tokens are not rows
    assert sum(record.norse.firing_rates.values()) > 0  # not a vacuous comparison
    floating = record.modes["floating_pt"]
    assert dict(floating.agreement.layers) == {"lif1": 1.0, "lif2": 1.0}
    assert floating.agreement.overall == 1.0
    assert floating.metrics == record.norse.metrics
    plain = evaluate_checkpoint(ckpt, task, split="test", limit=6, overrides=["train.device=cpu"])
    assert record.n_examples == plain["n_examples"] > 0
    for key, value in plain["metrics"].items():
        assert record.norse.metrics[key] == pytest.approx(value, abs=1e-6)
