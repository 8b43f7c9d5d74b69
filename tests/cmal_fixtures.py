"""Hand-written anchors, a tiny CMAL network and a batch that fit each other, shared by the
tests of CMAL's prompt layer and losses."""

from __future__ import annotations

import dataclasses

import torch

from ash_neuro.config import Config, config_from_dict
from ash_neuro.losses.mlm import TokenizerInfo
from ash_neuro.models.ash_net import ASHNet
from ash_neuro.models.associative_prompt import ANCHOR_FIELDS, AnchorBatch
from ash_neuro.models.factory import build_model

# the world lexicon's entity indices: the 7 shapes, then the 8 colours
CIRCLE, SQUARE, STAR, HEXAGON, RED, BLUE = 0, 1, 4, 5, 7, 9
ENTITIES = 15
VOCAB, IMAGE_SIZE = 40, 16
TOKEN_INFO = TokenizerInfo(vocab_size=VOCAB, pad_id=0, mask_id=4, special_ids=(0, 1, 2, 3, 4))


def scene() -> AnchorBatch:
    """Caption 0 on image 0 (wall, floor, then objects red circle, red square, blue hexagon at
    instance ids 2, 3, 4): "red" (token 2, both red objects), "ball" (tokens 3-4, the circle),
    "hexagon" (token 6). Caption 1 on image 1 (no tags): "star" (token 1), the caption
    fallback."""
    entity = torch.zeros(2, 3, ENTITIES, dtype=torch.bool)
    for k, carried in enumerate(((CIRCLE, RED), (SQUARE, RED), (HEXAGON, BLUE))):
        entity[0, k, list(carried)] = True
    objects = torch.zeros(2, 3, 3, dtype=torch.bool)
    objects[0, 0, :2] = objects[0, 1, 0] = objects[0, 2, 2] = True
    return AnchorBatch(
        anchor_token=torch.tensor([[-1, -1, 0, 1, 1, -1, 2], [-1, 0, -1, -1, -1, -1, -1]]),
        anchor_entity=torch.tensor([[RED, CIRCLE, HEXAGON], [STAR, -1, -1]]),
        anchor_objects=objects,
        object_instance=torch.tensor([[2, 3, 4], [-1, -1, -1]]),
        object_box=torch.zeros(2, 3, 4),
        object_entity=entity,
        object_mask=torch.tensor([[True, True, True], [False, False, False]]),
    )


def cmal_model(seed: int = 0) -> tuple[ASHNet, Config]:
    """A tiny CMAL network: 5 instance tokens per 16 px image, the ratio adapter, the unified
    encoder with an AMC layer of 15 entities."""
    cfg = config_from_dict(
        {
            "world": {"image_size": IMAGE_SIZE},
            "model": {
                "embed_dim": 8,
                "visual": {"kind": "panoptic_instances", "patch_size": 8, "dim": 16, "depth": 1,
                           "heads": 2, "max_instances": 5},
                "spiking": {"time_steps": 3, "hidden_dims": [24], "out_dim": 12},
                "text": {"dim": 16, "depth": 1, "heads": 2, "max_len": 12},
                "adapter": {"kind": "ratio"},
                "fusion": {"kind": "unified", "depth": 1, "heads": 2, "sphere_dim": 8,
                           "amc_entities": ENTITIES},
            },
        }
    )  # fmt: skip
    torch.manual_seed(seed)
    return build_model(cfg, VOCAB), cfg


def cmal_batch() -> dict[str, torch.Tensor]:
    """Two images with the instance maps of `scene()` and two captions of 7 and 4 tokens."""
    instance_map = torch.zeros(2, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.long)
    instance_map[:, 8:] = 1  # floor below the wall
    instance_map[0, 2:6, 2:6], instance_map[0, 10:14, 2:6] = 2, 3
    instance_map[0, 10:14, 10:14] = 4
    ids = torch.tensor([[2, 10, 11, 12, 13, 14, 3], [2, 15, 16, 3, 0, 0, 0]])
    g = torch.Generator().manual_seed(0)
    return {
        "image": torch.rand(2, 3, IMAGE_SIZE, IMAGE_SIZE, generator=g),
        "image_id": torch.tensor([0, 1]),
        "instance_map": instance_map,
        "text_ids": ids,
        "text_mask": (ids != 0).long(),
        **{key: getattr(scene(), key) for key in ANCHOR_FIELDS},
    }


def with_fusion(cfg: Config, **changes) -> Config:
    fusion = dataclasses.replace(cfg.model.fusion, **changes)
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, fusion=fusion))
