"""Retrieval: fine-tuned with ITC and ITM only, whatever the other pre-training weights."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ash_neuro.config import config_from_dict
from ash_neuro.models.factory import build_task_model
from ash_neuro.tasks.base import TaskObjective
from tests.models.conftest import PAD, TINY, VOCAB, make_batch


def test_the_fine_tuning_loss_is_itc_plus_itm_at_their_weights():
    tiny_cfg = config_from_dict(TINY)
    weights = {"itc": 0.5, "mlm": 1.0, "itm": 2.0, "stua": 1.0, "spike_rate": 1.0}
    cfg = dataclasses.replace(
        tiny_cfg,
        finetune=dataclasses.replace(tiny_cfg.finetune, task="retrieval"),
        loss=dataclasses.replace(tiny_cfg.loss, weights=weights),
    )
    torch.manual_seed(0)
    model = build_task_model(cfg, VOCAB, PAD)

    class Tokenizer:
        pad_token_id, mask_token_id, all_special_ids = 0, 4, [0, 1, 2, 3, 4]

        def __len__(self):
            return VOCAB

    batch = make_batch()
    losses, rates = TaskObjective(model, Tokenizer())(batch)
    assert list(losses) == ["itc", "itm", "total"]
    expected = 0.5 * losses["itc"].item() + 2.0 * losses["itm"].item()
    assert losses["total"].item() == pytest.approx(expected, rel=1e-6)
    assert np.isfinite(expected) and list(rates)[:2] == ["lif1", "lif2"]
    assert "lif1_silent" in rates and "lif2_saturated" in rates  # the log's neuron shares
