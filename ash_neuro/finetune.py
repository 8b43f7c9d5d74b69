"""`python -m ash_neuro.finetune --task T --init ckpt.pt`: fine-tune a pre-trained ASH-Net.

The backbone starts from `--init` (a pre-training checkpoint, or a fine-tuned one whose head is
dropped), the task's head (`ash_neuro.models.task_model`) from scratch; the loop, resuming,
logging and checkpoints are pre-training's (`ash_neuro.loop.fit`). The model config must be the
one the init checkpoint was trained with (e.g. `model.hybrid=false` for an ANN-only one);
validation after each epoch reports the task's metrics (`ash_neuro.tasks`). Evaluate the result
with `python -m ash_neuro.evaluate OUT/ckpt.pt --split test`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from torch import Tensor

from ash_neuro.checkpoint import load_checkpoint
from ash_neuro.config import Config, config_from_dict, config_to_dict, load_config
from ash_neuro.data.datasets import Collator
from ash_neuro.data.tokenizer import load_tokenizer, tokenizer_path_for
from ash_neuro.errors import CheckpointError, cli_entry
from ash_neuro.loop import (
    add_run_arguments,
    config_differences,
    fit,
    resolve_resume,
    run_overrides,
    setup_run,
    world_path,
)
from ash_neuro.models.factory import build_task_model
from ash_neuro.models.task_model import TaskModel
from ash_neuro.tasks import HEADLINE, FinetuneObjective, evaluate_task, task_dataset

BACKBONE = "backbone."
DEFAULT_OUT = "runs/finetune/<task>"


def architecture(cfg: Config) -> dict:
    """What a checkpoint's weights depend on: the model section and the image size."""
    data = config_to_dict(cfg)
    return {"model": data["model"], "world": {"image_size": data["world"]["image_size"]}}


def backbone_weights(state: dict) -> dict[str, Tensor]:
    """The backbone's weights from a pre-training or a fine-tuning checkpoint."""
    if "task" not in state:
        return state["model"]
    return {k[len(BACKBONE) :]: v for k, v in state["model"].items() if k.startswith(BACKBONE)}


def load_backbone(model: TaskModel, path: Path, cfg: Config) -> None:
    """Load `--init`'s backbone into `model` after checking it was built from the same model
    config; every mismatch is a one-line `CheckpointError`."""
    state = load_checkpoint(path)
    saved = architecture(config_from_dict(state["config"]))
    current = architecture(cfg)
    differ = config_differences(saved, current)
    if differ:
        shown = ", ".join(
            f"{key}: checkpoint {left!r}, this run {right!r}" for key, left, right in differ[:3]
        )
        raise CheckpointError(
            f"--init {path} was trained with another model config ({shown}); fine-tune with "
            "the config it was trained with (see its config.json), e.g. as overrides"
        )
    try:
        model.backbone.load_state_dict(backbone_weights(state))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1].strip()[:160]
        raise CheckpointError(
            f"--init {path} does not fit this model ({first}); was it trained on another "
            "world or tokenizer?"
        ) from None


def finetune(cfg: Config, out: Path, init: Path, resume: bool = False) -> dict:
    """Fine-tune `init`'s backbone on `cfg.finetune.task`, checkpointing into `out`; returns
    the final validation metrics."""
    task = cfg.finetune.task
    device, dist = setup_run(cfg, out)
    state = resolve_resume(out, resume, cfg, sections=("model", "finetune.task"))
    path = world_path(cfg)
    tokenizer = load_tokenizer(tokenizer_path_for(path))
    dataset = task_dataset(cfg, task, "train", tokenizer)
    answers = list(getattr(dataset, "answers", ())) if task == "vqa" else []
    model = build_task_model(cfg, len(tokenizer), tokenizer.pad_token_id, len(answers))
    if state is None:
        load_backbone(model, Path(init), cfg)
    model.to(device)
    return fit(
        name=f"finetune {task}",
        cfg=cfg,
        out=out,
        device=device,
        dist=dist,
        model=model,
        objective=FinetuneObjective(model, cfg.loss, tokenizer),
        dataset=dataset,
        collate_fn=Collator(tokenizer, cfg.model.text.max_len),
        state=state,
        validate=lambda: evaluate_task(model, cfg, tokenizer, device, "val", cfg.train.eval_limit),
        headline=HEADLINE[task],
        extra={
            "tokenizer": str(tokenizer_path_for(path)),
            "world": str(path),
            "init": str(init),
            "task": {"name": task, "answers": answers},
        },
        lr_scales={"head.": cfg.finetune.head_lr_scale},
    )


@cli_entry
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m ash_neuro.finetune", description=__doc__)
    parser.add_argument(
        "--task", required=True, help="retrieval, vqa, nlvr, ve or grounding (finetune.task)"
    )
    parser.add_argument("--init", required=True, help="pre-trained checkpoint (ckpt.pt)")
    add_run_arguments(parser, default_config="configs/finetune.yaml", out=DEFAULT_OUT)
    args = parser.parse_args(argv)
    cfg = load_config(args.config, [f"finetune.task={args.task}", *run_overrides(args)])
    out = Path(args.out.replace("<task>", cfg.finetune.task))
    start = time.perf_counter()
    metrics = finetune(cfg, out, Path(args.init), resume=args.resume)
    print(f"done in {time.perf_counter() - start:.0f} s; checkpoint: {out / 'ckpt.pt'}")
    return metrics


if __name__ == "__main__":
    main()
