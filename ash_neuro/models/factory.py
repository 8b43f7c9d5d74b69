"""`build_model(cfg, ...)`: the one place a config becomes a network."""

from __future__ import annotations

from ash_neuro.config import Config
from ash_neuro.models.ash_net import ASHNet
from ash_neuro.models.task_model import TaskModel


def build_model(cfg: Config, vocab_size: int, pad_token_id: int = 0) -> ASHNet:
    """The ASH-Net described by `cfg.model`, for `cfg.world.image_size` images and a tokenizer
    of `vocab_size` tokens; the ITC temperature starts at `cfg.loss.temperature`."""
    return ASHNet(
        cfg.model,
        vocab_size=vocab_size,
        pad_token_id=pad_token_id,
        image_size=cfg.world.image_size,
        temperature=cfg.loss.temperature,
    )


def build_task_model(
    cfg: Config, vocab_size: int, pad_token_id: int = 0, n_answers: int = 0
) -> TaskModel:
    """`build_model`'s backbone with the head of `cfg.finetune.task` (VQA: over `n_answers`)."""
    backbone = build_model(cfg, vocab_size, pad_token_id)
    return TaskModel(backbone, cfg.finetune.task, n_answers)
