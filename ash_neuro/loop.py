"""The training machinery every training-like command shares (pre-training, fine-tuning).

Run set-up (device, process group, threads, seeds), the command-line arguments, resuming with
a config check, the JSONL/TensorBoard logger, the optimiser and schedule, atomic checkpoints
and `fit`: the one step loop (forward, NaN check, backward, step, log, checkpoint, validate
after each epoch). A command supplies the dataset, the model and an objective
`objective(batch) -> (losses, spike rates)` whose `losses["total"]` is minimised; resuming
restores weights, optimiser, scheduler, step, data position and every RNG, so a killed run
continues to the same result.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ash_neuro.atomic import replace_atomically
from ash_neuro.checkpoint import load_checkpoint, nonfinite_entry, save_checkpoint
from ash_neuro.config import Config, config_from_dict, config_to_dict
from ash_neuro.data.sampler import EpochShardSampler
from ash_neuro.data.sources import DataIdentity
from ash_neuro.errors import AshError, CheckpointError, TrainingDiverged
from ash_neuro.runtime import (
    DistInfo,
    all_ranks_agree,
    configure_threads,
    distributed_session,
    gather_objects,
    rng_state,
    seed_everything,
    set_rng_state,
)


def add_run_arguments(parser: argparse.ArgumentParser, default_config: str, out: str) -> None:
    """The arguments every training-like command shares (train, finetune)."""
    parser.add_argument("--config", default=default_config, help="YAML run config")
    parser.add_argument("--out", default=out, help=f"run folder (ckpt.pt, logs; default {out})")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="overrides train.device")
    parser.add_argument(
        "--resume", action="store_true", help="continue from OUT/ckpt.pt when it exists"
    )
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. train.lr=1e-3")


def run_overrides(args: argparse.Namespace) -> list[str]:
    """The command line's `key=value` overrides, with `--device` as one more."""
    return list(args.overrides) + ([f"train.device={args.device}"] if args.device else [])


@dataclass
class Progress:
    """Where the run is; saved in every checkpoint."""

    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    skipped: int = 0  # steps whose non-finite gradient was skipped (train.nonfinite_grad)
    world_size: int = 1  # processes of the run (a resume must keep it)


class RunLogger:
    """JSONL metrics (and TensorBoard when installed), written by rank 0 only.

    `resumed_at`: the step of the checkpoint a run resumes from; the log is cut back to what
    that checkpoint had seen (training records up to it, validations before it: a validation at
    that very step runs again), so a resumed run's log has each step once.
    """

    def __init__(self, out: Path, enabled: bool, resumed_at: int | None = None) -> None:
        self.enabled = enabled
        self.tensorboard = None
        if not enabled:
            return
        self.path = out / "metrics.jsonl"
        if resumed_at is not None and self.path.is_file():
            kept = [
                line
                for line in self.path.read_text().splitlines()
                if _kept_on_resume(line, resumed_at)
            ]
            with replace_atomically(self.path) as tmp:
                tmp.write_text("".join(f"{line}\n" for line in kept))
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(str(out / "tensorboard"))
        except ImportError:
            pass

    def log(self, record: dict) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.tensorboard is not None:
            for key, value in record.items():
                if isinstance(value, int | float) and key != "step":
                    self.tensorboard.add_scalar(key, value, record["step"])


def _kept_on_resume(line: str, step: int) -> bool:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return False  # a line cut by the kill
    validation = any(key.startswith("val/") for key in record)
    return record.get("step", 0) < step or (record.get("step") == step and not validation)


def build_optimizer(
    model: nn.Module, cfg: Config, lr_scales: Mapping[str, float] | None = None
) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases, norms, embeddings' positions and the temperature.

    `lr_scales` maps a parameter-name prefix to a learning-rate multiplier (fine-tuning trains
    its freshly initialised head faster than the pre-trained backbone).
    """
    scales = dict(lr_scales or {})
    groups: dict[tuple[bool, float], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        scale = next((s for prefix, s in scales.items() if name.startswith(prefix)), 1.0)
        decay = not (param.ndim < 2 or "pos_embed" in name)
        groups.setdefault((decay, scale), []).append(param)
    return torch.optim.AdamW(
        [
            {
                "params": params,
                "weight_decay": cfg.train.weight_decay if decay else 0.0,
                "lr": cfg.train.lr * scale,
            }
            for (decay, scale), params in sorted(
                groups.items(), key=lambda kv: (-kv[0][0], kv[0][1])
            )
        ],
        lr=cfg.train.lr,
    )


def build_scheduler(
    optimizer: torch.optim.Optimizer, warmup: int, total: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up then cosine decay to 10% of the peak learning rate."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# What may change between a run and its --resume: how long it runs and how it is executed and
# logged, not what a step computes (the data's identity is checked by fingerprint instead of
# its path).
RESUMABLE_CHANGES = (
    "train.epochs",
    "train.max_steps",
    "train.device",
    "train.num_workers",
    "train.threads",
    "train.log_every",
    "train.ckpt_every",
    "train.eval_limit",
    "world.path",
    "world.workers",
    "data.root",
    "data.on_error",
    "data.check_images",
)


def config_differences(a: dict, b: dict, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted key, value in a, value in b) wherever two config dicts differ."""
    found = []
    for key in sorted(set(a) | set(b)):
        left, right = a.get(key), b.get(key)
        if isinstance(left, dict) and isinstance(right, dict):
            found += config_differences(left, right, f"{prefix}{key}.")
        elif left != right:
            found.append((f"{prefix}{key}", left, right))
    return found


def resolve_resume(
    out: Path, resume: bool, cfg: Config, kind: str, data: DataIdentity
) -> dict | None:
    """The checkpoint to continue from, after checking it is of this run's `kind` (pretrain,
    finetune), was trained on the same data (fingerprint) and with the same config but for
    `RESUMABLE_CHANGES`; anything else is a one-line CheckpointError listing what differs."""
    ckpt_path = out / "ckpt.pt"
    if not resume or not ckpt_path.exists():
        return None
    state = load_checkpoint(ckpt_path)
    if state.get("kind") != kind:
        raise CheckpointError(
            f"{ckpt_path} is a {state.get('kind')} checkpoint, this is a {kind} run; "
            "choose another --out"
        )
    saved, current = config_to_dict(config_from_dict(state["config"])), config_to_dict(cfg)
    differ = [
        f"{key}: checkpoint {left!r}, this run {right!r}"
        for key, left, right in config_differences(saved, current)
        if key not in RESUMABLE_CHANGES
    ]
    fingerprint = state["data"]["fingerprint"]
    if fingerprint != data.fingerprint:
        differ.insert(0, f"data: checkpoint {fingerprint}, this run {data.fingerprint}")
    if differ:
        raise CheckpointError(
            f"{ckpt_path} was trained with another config ({'; '.join(differ[:3])}); resume "
            f"with the same config (only {', '.join(RESUMABLE_CHANGES)} may change) or choose "
            "another --out"
        )
    return state


@contextmanager
def run_session(cfg: Config, out: Path) -> Iterator[tuple[torch.device, DistInfo]]:
    """Device, process group (under torchrun; left on every exit path), threads, run folder and
    seeds (`train.seed + rank`: each rank draws its own masks, negatives and views)."""
    with distributed_session(cfg.train.device) as (device, dist):
        configure_threads(cfg.train.threads)
        out.mkdir(parents=True, exist_ok=True)
        seed_everything(cfg.train.seed + dist.rank)
        yield device, dist


def fit(
    *,
    name: str,
    cfg: Config,
    out: Path,
    device: torch.device,
    dist: DistInfo,
    model: nn.Module,
    objective: nn.Module,
    dataset: Dataset,
    collate_fn: Callable[[list[dict]], dict],
    state: dict | None,
    validate: Callable[[], dict[str, float]],
    headline: Sequence[str],
    description: Mapping,
    lr_scales: Mapping[str, float] | None = None,
) -> dict:
    """Train `model` by minimising `objective(batch)[0]["total"]` over `dataset` per `cfg.train`.

    `state` is the checkpoint to resume from (see `resolve_resume`); `validate()` runs on rank
    0 after each epoch (and at a mid-epoch end) and returns the metrics kept in the checkpoint,
    of which the `headline` keys are printed; `description` (`models.factory.describe_checkpoint`:
    config, tokenizer, task, data) is saved in every checkpoint beside the training state.
    Returns the last validation metrics.
    """
    train_cfg = cfg.train
    sampler = EpochShardSampler(len(dataset), train_cfg.seed, True, dist.rank, dist.world_size)
    loader = DataLoader(
        dataset,
        batch_size=train_cfg.batch_size,
        sampler=sampler,
        drop_last=True,
        num_workers=train_cfg.num_workers,
        collate_fn=collate_fn,
        # its own generator: creating an epoch's iterator would otherwise draw from the global
        # torch RNG, so a resumed run (new iterator mid-epoch) would drift from a straight one
        generator=torch.Generator().manual_seed(train_cfg.seed),
    )
    steps_per_epoch = len(dataset) // dist.world_size // train_cfg.batch_size
    total_steps = train_cfg.epochs * steps_per_epoch
    if train_cfg.max_steps > 0:
        total_steps = min(total_steps, train_cfg.max_steps)
    if total_steps == 0:
        raise AshError(
            f"nothing to train: {len(dataset)} examples give no full batch of "
            f"{train_cfg.batch_size}; lower train.batch_size"
        )
    ckpt_path = out / "ckpt.pt"
    if state is not None and state["progress"]["step"] >= total_steps:
        if dist.is_main:
            print(f"{name}: {ckpt_path} is complete ({total_steps} steps), reusing")
        return state["metrics"]

    if dist.enabled:
        # a switched-off loss or another task's head leaves parameters without gradient
        objective = nn.parallel.DistributedDataParallel(
            objective,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True,
        )
    optimizer = build_optimizer(model, cfg, lr_scales)
    scheduler = build_scheduler(optimizer, train_cfg.warmup_steps, total_steps)

    progress = Progress(world_size=dist.world_size)
    if state is not None:
        progress = Progress(**state["progress"])
        if progress.world_size != dist.world_size:
            # each rank's data offset and random draws belong to the process count that made them
            raise CheckpointError(
                f"{ckpt_path} was trained by {progress.world_size} process(es), this run has "
                f"{dist.world_size}; resume with torchrun --nproc_per_node "
                f"{progress.world_size} (or start a new --out)"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"][dist.rank], device)
        if dist.is_main:
            print(f"resuming from {ckpt_path} at step {progress.step}/{total_steps}")

    logger = RunLogger(out, dist.is_main, resumed_at=progress.step if state else None)
    if dist.is_main:
        (out / "config.json").write_text(json.dumps(config_to_dict(cfg), indent=2))

    def checkpoint(metrics: dict) -> None:
        rng = gather_objects(rng_state(device), dist)  # every rank's own, saved by rank 0
        if not dist.is_main:
            return
        bad = nonfinite_entry(model.state_dict())
        if bad is not None:  # never replace the last good checkpoint with broken weights
            raise TrainingDiverged(
                f"weight {bad} became non-finite by step {progress.step}; the last good "
                f"checkpoint {ckpt_path} is kept: lower train.lr, then rerun with --resume"
            )
        save_checkpoint(
            {
                **description,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "progress": vars(progress).copy(),
                "rng": rng,
                "metrics": metrics,
            },
            ckpt_path,
        )

    def run_validation() -> dict:
        if not dist.is_main:
            return {}
        metrics = validate()
        logger.log(
            {
                "step": progress.step,
                "epoch": progress.epoch,
                **{f"val/{k}": v for k, v in metrics.items()},
            }
        )
        shown = "  ".join(f"{k}={metrics[k]:.1f}" for k in headline)
        print(f"val {name} @ step {progress.step}: {shown}")
        return metrics

    metrics: dict = dict(state["metrics"]) if state is not None else {}
    bar = tqdm(
        total=total_steps,
        initial=progress.step,
        disable=not dist.is_main,
        desc=name,
        dynamic_ncols=True,
    )
    model.train()
    tic, seen = time.perf_counter(), 0
    while progress.step < total_steps:
        sampler.set_epoch(progress.epoch, start=progress.step_in_epoch * train_cfg.batch_size)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(progress.epoch)
        for batch in loader:
            batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
            losses, rates = objective(batch)
            total = losses["total"]
            finite = bool(torch.isfinite(total))
            if not all_ranks_agree(finite, dist, device):
                if finite:  # every rank stops, not only the one whose loss broke
                    raise TrainingDiverged(
                        f"the loss of another process became non-finite at step "
                        f"{progress.step + 1}; the last good checkpoint {ckpt_path} is kept"
                    )
                bad = {k: round(float(v.detach()), 4) for k, v in losses.items()}
                where = f" on rank {dist.rank}" if dist.enabled else ""
                raise TrainingDiverged(
                    f"loss became {float(total.detach())}{where} at step {progress.step + 1} "
                    f"({bad}); "
                    f"the last good checkpoint {ckpt_path} is kept: lower train.lr or raise "
                    "train.warmup_steps, then rerun with --resume"
                )
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            # the gradient norm, clipped in place when train.grad_clip > 0 (else inf: no clip)
            norm = torch.nn.utils.clip_grad_norm_(
                model.parameters(), train_cfg.grad_clip or float("inf")
            )
            if torch.isfinite(norm):
                optimizer.step()
            elif train_cfg.nonfinite_grad == "stop":
                raise TrainingDiverged(
                    f"the gradient became {float(norm)} at step {progress.step + 1} (loss "
                    f"{float(total.detach()):.4f}); the last good checkpoint {ckpt_path} is "
                    "kept: lower train.lr, set train.nonfinite_grad=skip, or rerun with --resume"
                )
            else:
                progress.skipped += 1  # this step's update is dropped; the schedule goes on
            scheduler.step()
            progress.step += 1
            progress.step_in_epoch += 1
            seen += batch["image"].shape[0]

            if progress.step % train_cfg.log_every == 0 or progress.step == total_steps:
                elapsed = time.perf_counter() - tic
                record = {
                    "step": progress.step,
                    "epoch": progress.epoch,
                    "lr": scheduler.get_last_lr()[0],
                    **{f"loss/{k}": float(v.detach()) for k, v in losses.items()},
                    **{f"spike_rate/{k}": float(v) for k, v in rates.items()},
                    "samples_per_s": seen * dist.world_size / max(elapsed, 1e-9),
                    **({"grad/skipped_steps": progress.skipped} if progress.skipped else {}),
                }
                logger.log(record)
                bar.set_postfix(
                    loss=f"{float(total.detach()):.3f}", sps=f"{record['samples_per_s']:.0f}"
                )
                tic, seen = time.perf_counter(), 0
            bar.update(1)
            if progress.step % train_cfg.ckpt_every == 0:
                checkpoint(metrics)
            if progress.step >= total_steps:
                break
        else:
            progress.epoch += 1
            progress.step_in_epoch = 0
            metrics = run_validation()
    bar.close()
    if progress.step_in_epoch:  # the run ended mid-epoch (max_steps): validate once more
        metrics = run_validation()
    checkpoint(metrics)
    return metrics
