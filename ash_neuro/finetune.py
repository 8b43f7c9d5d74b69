"""`python -m ash_neuro.finetune --task T --init ckpt.pt`: fine-tune a pre-trained network.

The backbone, its config (`model` and `world` sections) and its tokenizer come from `--init` (a
pre-training checkpoint, or a fine-tuned one whose head is dropped), which describes itself; the
task's head (`ash_neuro.tasks`) starts from scratch; pretrained backbones are rebuilt from
`--init`'s records (their files need not be on disk). `finetune.tokenizer` moves a scratch BERT
to a tokenizer fitted to the fine-tuning data (`python -m ash_neuro.data.tokenizer`).
`--config` (default `configs/finetune.yaml`) and the overrides set the training, the task and
the data (`data:`, the world by default, where `--init` was trained). The loop, resuming,
logging and checkpoints are pre-training's (`ash_neuro.loop.fit`); validation after each epoch
reports the task's metrics. Evaluate the result with
`python -m ash_neuro.evaluate OUT/ckpt.pt --split test`.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from ash_neuro.config import Config, load_config, parse_overrides
from ash_neuro.data.datasets import Collator, first_images
from ash_neuro.data.sources import check_world, configured_source, data_identity, locate_data
from ash_neuro.data.tokenizer import load_tokenizer
from ash_neuro.errors import CheckpointError, ConfigError, cli_entry
from ash_neuro.loop import add_run_arguments, fit, resolve_resume, run_overrides, run_session
from ash_neuro.models.backbones import freeze, pretrained_lr_scales
from ash_neuro.models.factory import (
    BACKBONE,
    FINETUNE,
    build_task_model,
    check_components,
    describe_checkpoint,
    load_model,
)
from ash_neuro.models.vocabulary import move_vocabulary
from ash_neuro.registry import TASKS
from ash_neuro.runtime import is_main_process
from ash_neuro.tasks.base import TaskObjective

DEFAULT_OUT = "runs/finetune/<task>"


def finetune_config(config: str | Path, overrides: list[str], init: Path) -> tuple[Config, object]:
    """(the run's config: `config` and `overrides` with the model and world of `init`, the
    tokenizer of `init`)."""
    given = parse_overrides(overrides)
    cfg = load_config(config, overrides)  # unknown or retired keys first
    if "model" in given:
        raise ConfigError(
            f"the network comes from --init {init}; model.* overrides cannot change it"
        )
    TASKS.get(cfg.finetune.task)
    loaded = load_model(init, task="retrieval")
    world = dataclasses.replace(loaded.cfg.world, path=cfg.world.path)
    cfg = dataclasses.replace(cfg, model=loaded.cfg.model, world=world)
    return locate_data(cfg, loaded.data, given), loaded


def init_record(init: Path, loaded) -> dict:
    """What a fine-tuning checkpoint records of its --init: where it was and how far it had
    trained (a resume must start from the same one)."""
    return {"path": str(Path(init).resolve()), "step": int(loaded.state["progress"]["step"])}


def run_vocabulary(cfg: Config, loaded) -> tuple[object, dict]:
    """(the run's tokenizer, the backbone's weights for it): `--init`'s, or with
    `finetune.tokenizer` that file's, the scratch BERT's vocabulary rows moved to it."""
    weights = loaded.backbone.state_dict()
    if not cfg.finetune.tokenizer:
        return loaded.tokenizer, weights
    if cfg.model.text.pretrained:
        raise ConfigError(
            f"finetune.tokenizer replaces the scratch BERT's vocabulary; the pretrained "
            f"{cfg.model.text.pretrained} keeps its own tokenizer"
        )
    tokenizer = load_tokenizer(cfg.finetune.tokenizer)
    return tokenizer, move_vocabulary(weights, loaded.tokenizer, tokenizer)


def finetune(cfg: Config, out: Path, init: Path, resume: bool = False, loaded=None) -> dict:
    """Fine-tune `init`'s backbone on `cfg.finetune.task`, checkpointing into `out`; returns
    the final validation metrics. `loaded`: `init` already read by `load_model`."""
    check_components(cfg)
    check_world(cfg)
    data = data_identity(cfg)
    task = TASKS.get(cfg.finetune.task)(cfg)
    with run_session(cfg, out) as (device, dist):
        state = resolve_resume(out, resume, cfg, FINETUNE, data)
        loaded = loaded or load_model(init, task="retrieval")
        if state is not None and state["init"] != init_record(init, loaded):
            raise CheckpointError(
                f"{out / 'ckpt.pt'} was fine-tuned from another --init ({state['init']['path']} "
                f"at step {state['init']['step']}); resume with that one or choose another --out"
            )
        tokenizer, weights = run_vocabulary(cfg, loaded)
        dataset = task.dataset(configured_source(cfg, "train"), "train", tokenizer)
        answers = task.answers(dataset)
        dataset = first_images(dataset, cfg.train.image_fraction)
        model = build_task_model(
            cfg, len(tokenizer), tokenizer.pad_token_id, answers, loaded.backbones
        )
        if state is None:
            model.backbone.load_state_dict(weights)
        freeze(model.backbone, cfg.train.freeze)
        model.to(device)
        return fit(
            name=f"finetune {task.name}",
            cfg=cfg,
            out=out,
            device=device,
            dist=dist,
            model=model,
            objective=TaskObjective(model, tokenizer),
            dataset=dataset,
            collate_fn=Collator(tokenizer, cfg.model.text.max_len),
            state=state,
            validate=lambda: task.evaluate(
                model,
                configured_source(cfg, "val"),
                "val",
                tokenizer,
                device,
                cfg.train.eval_limit,
            ),
            headline=task.headline,
            description={
                **describe_checkpoint(
                    FINETUNE,
                    cfg,
                    tokenizer,
                    data_identity(cfg),
                    task.name,
                    answers,
                    loaded.backbones,
                ),
                "init": init_record(init, loaded),
            },
            lr_scales={
                "head.": cfg.finetune.head_lr_scale,
                **pretrained_lr_scales(cfg, BACKBONE),
            },
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
    init = Path(args.init)
    overrides = [f"finetune.task={args.task}", *run_overrides(args)]
    cfg, loaded = finetune_config(args.config, overrides, init)
    out = Path(args.out.replace("<task>", cfg.finetune.task))
    start = time.perf_counter()
    metrics = finetune(cfg, out, init, resume=args.resume, loaded=loaded)
    if is_main_process():
        print(f"done in {time.perf_counter() - start:.0f} s; checkpoint: {out / 'ckpt.pt'}")
    return metrics


if __name__ == "__main__":
    main()
