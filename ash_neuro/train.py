"""`python -m ash_neuro.train`: pre-train an ASH-Net on the procedural world.

One readable loop: data, forward (all pre-training losses), backward, step, log, evaluate,
checkpoint. Resuming restores weights, optimiser, scheduler, step, data position and every RNG,
so a killed run continues to the same result. Launch with `torchrun` for several processes:
the model is wrapped in PyTorch's DistributedDataParallel and only rank 0 logs and saves.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ash_neuro.checkpoint import load_checkpoint, save_checkpoint
from ash_neuro.config import Config, config_from_dict, config_to_dict, load_config
from ash_neuro.data.datasets import CaptionDataset, Collator, retrieval_split
from ash_neuro.data.sampler import EpochShardSampler
from ash_neuro.data.tokenizer import load_tokenizer, tokenizer_path_for
from ash_neuro.errors import AshError, CheckpointError, TrainingDiverged, cli_entry
from ash_neuro.models.factory import build_model
from ash_neuro.objective import PretrainingObjective
from ash_neuro.retrieval import evaluate_retrieval
from ash_neuro.runtime import (
    DistInfo,
    configure_threads,
    init_distributed,
    resolve_device,
    rng_state,
    seed_everything,
    set_rng_state,
)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments every training-like command shares (train, finetune)."""
    parser.add_argument("--config", default="configs/default.yaml", help="YAML run config")
    parser.add_argument("--out", default="runs/default", help="run folder (ckpt.pt, logs)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="overrides train.device")
    parser.add_argument(
        "--resume", action="store_true", help="continue from OUT/ckpt.pt when it exists"
    )
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. train.lr=1e-3")


@dataclass
class Progress:
    """Where the run is; saved in every checkpoint."""

    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0


class RunLogger:
    """JSONL metrics (and TensorBoard when installed), written by rank 0 only."""

    def __init__(self, out: Path, enabled: bool) -> None:
        self.enabled = enabled
        self.tensorboard = None
        if not enabled:
            return
        self.path = out / "metrics.jsonl"
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


def build_optimizer(model: torch.nn.Module, cfg: Config) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases, norms, embeddings' positions and the temperature."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "pos_embed" in name else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": cfg.train.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.train.lr)


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


def world_path(cfg: Config) -> Path:
    path = Path(cfg.world.path)
    if not path.is_file():
        raise AshError(
            f"world file {path} not found; generate it with "
            f"`python -m ash_neuro.data.generate --out {path}` (or `make world`)"
        )
    return path


def resolve_resume(out: Path, resume: bool, cfg: Config) -> dict | None:
    """The checkpoint to continue from, after checking it belongs to this run's config."""
    ckpt_path = out / "ckpt.pt"
    if not resume or not ckpt_path.exists():
        return None
    state = load_checkpoint(ckpt_path)
    saved = config_from_dict(state["config"])
    if config_to_dict(saved)["model"] != config_to_dict(cfg)["model"]:
        raise CheckpointError(
            f"{ckpt_path} was trained with a different model config; "
            "resume with the same --config/overrides or choose another --out"
        )
    return state


def evaluate(model, cfg: Config, tokenizer, device: torch.device, split: str) -> dict[str, float]:
    data = retrieval_split(cfg.world.path, split, limit=cfg.train.eval_limit)
    return evaluate_retrieval(
        model,
        data.images,
        data.texts,
        data.txt2img,
        data.img2txt,
        tokenizer,
        cfg.model.text.max_len,
        device,
    )


def train(cfg: Config, out: Path, resume: bool = False) -> dict:
    """Pre-train per `cfg`, checkpointing into `out`; returns the final validation metrics."""
    device = resolve_device(cfg.train.device)
    dist: DistInfo = init_distributed(device)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    configure_threads(cfg.train.threads)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.train.seed + dist.rank)

    state = resolve_resume(out, resume, cfg)
    path = world_path(cfg)
    tokenizer = load_tokenizer(tokenizer_path_for(path))
    dataset = CaptionDataset(path, "train", tokenizer, cfg.model.text.max_len, caption="random")
    sampler = EpochShardSampler(len(dataset), cfg.train.seed, True, dist.rank, dist.world_size)
    loader = DataLoader(
        dataset,
        batch_size=cfg.train.batch_size,
        sampler=sampler,
        drop_last=True,
        num_workers=cfg.train.num_workers,
        collate_fn=Collator(tokenizer, cfg.model.text.max_len),
        # its own generator: creating an epoch's iterator would otherwise draw from the global
        # torch RNG, so a resumed run (new iterator mid-epoch) would drift from a straight one
        generator=torch.Generator().manual_seed(cfg.train.seed),
    )
    steps_per_epoch = len(dataset) // dist.world_size // cfg.train.batch_size
    total_steps = cfg.train.epochs * steps_per_epoch
    if cfg.train.max_steps > 0:
        total_steps = min(total_steps, cfg.train.max_steps)
    if total_steps == 0:
        raise AshError(
            f"nothing to train: {len(dataset)} images give no full batch of "
            f"{cfg.train.batch_size}; lower train.batch_size"
        )

    if state is not None and state["progress"]["step"] >= total_steps:
        if dist.is_main:
            print(f"train: {out / 'ckpt.pt'} is complete ({total_steps} steps), reusing")
        return state["metrics"]

    model = build_model(cfg, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    model.to(device)
    objective = PretrainingObjective(model, cfg.loss, tokenizer)
    if dist.enabled:
        objective = torch.nn.parallel.DistributedDataParallel(
            objective, device_ids=[device.index] if device.type == "cuda" else None
        )
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg.train.warmup_steps, total_steps)

    progress = Progress()
    ckpt_path = out / "ckpt.pt"
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        progress = Progress(**state["progress"])
        set_rng_state(state["rng"])
        if dist.is_main:
            print(f"resuming from {ckpt_path} at step {progress.step}/{total_steps}")

    logger = RunLogger(out, dist.is_main)
    if dist.is_main:
        (out / "config.json").write_text(json.dumps(config_to_dict(cfg), indent=2))

    def checkpoint(metrics: dict | None = None) -> None:
        if not dist.is_main:
            return
        save_checkpoint(
            {
                "config": config_to_dict(cfg),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "progress": vars(progress).copy(),
                "rng": rng_state(),
                "tokenizer": str(tokenizer_path_for(path)),
                "world": str(path),
                "metrics": metrics or {},
            },
            ckpt_path,
        )

    metrics: dict = {}
    bar = tqdm(
        total=total_steps,
        initial=progress.step,
        disable=not dist.is_main,
        desc="pretrain",
        dynamic_ncols=True,
    )
    model.train()
    tic, seen = time.perf_counter(), 0
    while progress.step < total_steps:
        sampler.set_epoch(progress.epoch, start=progress.step_in_epoch * cfg.train.batch_size)
        dataset.set_epoch(progress.epoch)
        for batch in loader:
            batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
            losses, rates = objective(batch)
            total = losses["total"]
            if not torch.isfinite(total):
                bad = {k: round(float(v), 4) for k, v in losses.items()}
                raise TrainingDiverged(
                    f"loss became {float(total)} at step {progress.step + 1} ({bad}); "
                    f"the last good checkpoint {ckpt_path} is kept: lower train.lr or raise "
                    "train.warmup_steps, then rerun with --resume"
                )
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            if cfg.train.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
            optimizer.step()
            scheduler.step()
            progress.step += 1
            progress.step_in_epoch += 1
            seen += batch["image"].shape[0]

            if progress.step % cfg.train.log_every == 0 or progress.step == total_steps:
                elapsed = time.perf_counter() - tic
                record = {
                    "step": progress.step,
                    "epoch": progress.epoch,
                    "lr": scheduler.get_last_lr()[0],
                    **{f"loss/{k}": float(v.detach()) for k, v in losses.items()},
                    **{f"spike_rate/{k}": float(v) for k, v in rates.items()},
                    "samples_per_s": seen * dist.world_size / max(elapsed, 1e-9),
                }
                logger.log(record)
                bar.set_postfix(
                    loss=f"{float(total.detach()):.3f}", sps=f"{record['samples_per_s']:.0f}"
                )
                tic, seen = time.perf_counter(), 0
            bar.update(1)
            if progress.step % cfg.train.ckpt_every == 0:
                checkpoint(metrics)
            if progress.step >= total_steps:
                break
        else:
            progress.epoch += 1
            progress.step_in_epoch = 0
            metrics = validate(model, cfg, tokenizer, device, progress, logger, dist)
    bar.close()
    if progress.step_in_epoch:  # the run ended mid-epoch (max_steps): validate once more
        metrics = validate(model, cfg, tokenizer, device, progress, logger, dist)
    checkpoint(metrics)
    if dist.enabled:
        torch.distributed.destroy_process_group()
    return metrics


def validate(model, cfg, tokenizer, device, progress: Progress, logger, dist: DistInfo) -> dict:
    if not dist.is_main:
        return {}
    metrics = evaluate(model, cfg, tokenizer, device, "val")
    logger.log(
        {
            "step": progress.step,
            "epoch": progress.epoch,
            **{f"val/{k}": v for k, v in metrics.items()},
        }
    )
    print(
        f"val retrieval @ step {progress.step}: "
        + "  ".join(f"{k}={metrics[k]:.1f}" for k in ("t2i_r1", "t2i_r5", "i2t_r1", "i2t_r5"))
    )
    return metrics


@cli_entry
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m ash_neuro.train", description=__doc__)
    add_run_arguments(parser)
    args = parser.parse_args(argv)
    overrides = list(args.overrides) + ([f"train.device={args.device}"] if args.device else [])
    cfg = load_config(args.config, overrides)
    out = Path(args.out)
    start = time.perf_counter()
    metrics = train(cfg, out, resume=args.resume)
    print(f"done in {time.perf_counter() - start:.0f} s; checkpoint: {out / 'ckpt.pt'}")
    return metrics


if __name__ == "__main__":
    main()
