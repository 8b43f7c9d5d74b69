"""Fixtures of the model tests: a tiny model config, tokenizer facts and a synthetic batch."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ash_neuro.config import Config, config_from_dict
from ash_neuro.losses.mlm import TokenizerInfo

VOCAB = 40
PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
IMAGE_SIZE = 16

TINY = {
    "world": {"image_size": IMAGE_SIZE},
    "model": {
        "embed_dim": 8,
        "visual": {"patch_size": 8, "dim": 16, "depth": 1, "heads": 2},
        "spiking": {"time_steps": 3, "hidden_dims": [24], "out_dim": 12},
        "text": {"dim": 16, "depth": 1, "heads": 2, "max_len": 12},
        "fusion": {"depth": 1, "heads": 2},
    },
}


@pytest.fixture
def tiny_cfg() -> Config:
    """A hybrid model small enough to build and run in well under a second."""
    return config_from_dict(TINY)


@pytest.fixture
def ann_only_cfg(tiny_cfg) -> Config:
    """The tiny model without its spiking encoder (`model.spiking.kind: none`)."""
    spiking = dataclasses.replace(tiny_cfg.model.spiking, kind="none")
    return dataclasses.replace(tiny_cfg, model=dataclasses.replace(tiny_cfg.model, spiking=spiking))


@pytest.fixture
def token_info() -> TokenizerInfo:
    return TokenizerInfo(
        vocab_size=VOCAB, pad_id=PAD, mask_id=MASK, special_ids=(PAD, UNK, CLS, SEP, MASK)
    )


def make_batch(batch: int = 6, length: int = 10, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random images and BERT-style captions ([CLS] words [SEP] [PAD]...) of varied lengths."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.zeros(batch, length, dtype=torch.long)
    mask = torch.zeros(batch, length, dtype=torch.long)
    for row in range(batch):
        n = int(torch.randint(4, length + 1, (1,), generator=g))
        ids[row, 0], ids[row, n - 1] = CLS, SEP
        ids[row, 1 : n - 1] = torch.randint(5, VOCAB, (n - 2,), generator=g)
        mask[row, :n] = 1
    image = torch.rand(batch, 3, IMAGE_SIZE, IMAGE_SIZE, generator=g)
    return {"image": image, "text_ids": ids, "text_mask": mask}


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    return make_batch()
