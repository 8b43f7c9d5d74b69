"""Shared fixtures: a tiny procedural world generated once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ash_neuro.config import Config, load_config

ROOT = Path(__file__).resolve().parents[1]

# A world and a model small enough for the test suite (seconds per run on 2 CPU cores).
TINY_WORLD = [
    "world.n_train=96",
    "world.n_val=24",
    "world.n_test=24",
    "world.n_compositional=24",
    "world.workers=1",
    "world.image_size=32",
]
TINY_MODEL = [
    "model.embed_dim=16",
    "model.visual.patch_size=8",
    "model.visual.dim=32",
    "model.visual.depth=1",
    "model.visual.heads=2",
    "model.spiking.hidden_dims=[32]",
    "model.spiking.out_dim=16",
    "model.spiking.time_steps=3",
    "model.text.dim=32",
    "model.text.depth=1",
    "model.text.heads=2",
    "model.text.max_len=24",
    "model.fusion.depth=1",
    "model.fusion.heads=2",
]
TINY_TRAIN = [
    "train.batch_size=16",
    "train.device=cpu",
    "train.threads=1",
    "train.warmup_steps=2",
    "train.log_every=1",
    "train.eval_limit=24",
]


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> Path:
    """Path of a tiny world HDF5 (its tokenizer lies beside it)."""
    from ash_neuro.data.generate import generate_world

    path = tmp_path_factory.mktemp("world") / "world.h5"
    cfg = load_config(ROOT / "configs" / "default.yaml", TINY_WORLD + [f"world.path={path}"])
    generate_world(cfg.world, path)
    return path


@pytest.fixture
def tiny_config(tiny_world) -> Config:
    """The default config shrunk to the tiny world and a tiny model."""
    overrides = TINY_WORLD + TINY_MODEL + TINY_TRAIN + [f"world.path={tiny_world}"]
    return load_config(ROOT / "configs" / "default.yaml", overrides)


def save_model_checkpoint(
    path: Path,
    cfg: Config,
    model,
    tokenizer=None,
    task: str | None = None,
    answers=(),
) -> Path:
    """A self-describing checkpoint of `model` (untrained) as the training loop writes it; its
    data record names a world that is not on disk unless `cfg.world.path` exists."""
    from ash_neuro.checkpoint import save_checkpoint
    from ash_neuro.data.sources import DataIdentity, data_identity
    from ash_neuro.models.factory import FINETUNE, PRETRAIN, describe_checkpoint

    tokenizer = tokenizer or small_tokenizer()
    if Path(cfg.world.path).is_file():
        data = data_identity(cfg)
    else:
        data = DataIdentity("world", str(path.parent / "absent-world.h5"), "0" * 16)
    kind = FINETUNE if task else PRETRAIN
    backbones = getattr(getattr(model, "backbone", model), "backbone_records", {})
    description = describe_checkpoint(kind, cfg, tokenizer, data, task, answers, backbones)
    return save_checkpoint({**description, "model": model.state_dict()}, path)


def finetune_and_evaluate(init: Path, world: Path, task: str, out: Path) -> dict:
    """Fine-tune `task` for 2 steps from the pre-training checkpoint `init` on `world`, then
    evaluate 8 test examples: the report must be the task's, not empty and finite (how every
    method's tests show that all five tasks run from its checkpoint)."""
    import math

    from ash_neuro import finetune as finetune_module
    from ash_neuro.evaluate import evaluate_checkpoint

    overrides = [*TINY_WORLD, *TINY_TRAIN, f"world.path={world}", f"finetune.task={task}"]
    overrides += ["train.max_steps=2", "train.batch_size=8"]
    cfg, loaded = finetune_module.finetune_config(
        ROOT / "configs" / "finetune.yaml", overrides, init
    )
    finetune_module.finetune(cfg, out, init, loaded=loaded)
    report = evaluate_checkpoint(out / "ckpt.pt", split="test", limit=8)
    assert report["task"] == task and report["n_examples"] > 0
    assert all(math.isfinite(v) for v in report["metrics"].values())
    return report


def small_tokenizer():
    """A WordPiece tokenizer of a few dozen tokens, fitted to a few captions."""
    from ash_neuro.data.tokenizer import as_fast_tokenizer, train_tokenizer

    texts = ["a red cube left of a blue ball", "two green boxes", "is there a yellow cross?"]
    return as_fast_tokenizer(train_tokenizer(texts, vocab_size=64))


def require_lava() -> Path:
    """The Lava interpreter. Without the Lava environment a test is skipped on a developer's
    machine, and fails where `CI` is set (`.ci/run` sets it, and makes `.venv-lava` first), so CI
    never passes with the Lava half skipped."""
    from hardware.runner import LavaError, lava_python

    try:
        return lava_python()
    except LavaError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"no Lava environment in CI ({exc})")
        pytest.skip(f"no Lava environment ({exc})")
