"""`python -m ash_neuro.evaluate ckpt.pt [--task T] [--split test]`: a task's metrics.

Prints, and writes as `eval_<task>_<split>.json` and `.md` beside the checkpoint (or into
`--out`), the task's standard metrics next to its trivial baseline (`ash_neuro.tasks`). A
fine-tuned checkpoint is evaluated on its own task by default; retrieval (ITC ranking, ITM
re-ranking per `finetune.itm_rerank_k`) runs on any checkpoint, pre-trained ones included.
Overrides apply to the checkpoint's config, e.g. `finetune.itm_rerank_k=0` or `world.path=...`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ash_neuro.checkpoint import load_checkpoint
from ash_neuro.config import Config, config_from_dict, override_config
from ash_neuro.data.tokenizer import load_tokenizer, tokenizer_path_for
from ash_neuro.errors import CheckpointError, ConfigError, cli_entry
from ash_neuro.finetune import backbone_weights
from ash_neuro.loop import run_overrides, world_path
from ash_neuro.models.factory import build_task_model
from ash_neuro.models.task_model import TASKS, TaskModel
from ash_neuro.runtime import configure_threads, resolve_device
from ash_neuro.tasks import BASELINE, evaluate_task, task_dataset, trivial_baseline


def load_task_model(
    ckpt_path: Path, task: str | None = None, overrides: list[str] | None = None
) -> tuple[TaskModel, Config, object]:
    """(model with weights, config, tokenizer) for evaluating `task` (default: the
    checkpoint's own task, retrieval for a pre-training checkpoint)."""
    state = load_checkpoint(ckpt_path)
    if not isinstance(state.get("config"), dict) or not isinstance(state.get("model"), dict):
        raise CheckpointError(f"{ckpt_path} holds no 'config' and 'model'")
    own = state.get("task", {}).get("name")
    task = task or own or "retrieval"
    if task not in TASKS:
        raise ConfigError(f"unknown task '{task}'; choose one of {', '.join(TASKS)}")
    if task not in ("retrieval", own):
        hint = (
            f"it was fine-tuned for {own}"
            if own
            else f"fine-tune it first: python -m ash_neuro.finetune --task {task} "
            f"--init {ckpt_path}"
        )
        raise CheckpointError(f"{ckpt_path} has no {task} head ({hint})")
    cfg = override_config(config_from_dict(state["config"]), [f"finetune.task={task}"])
    cfg = override_config(cfg, overrides or [])
    tokenizer = load_tokenizer(tokenizer_path_for(world_path(cfg)))
    answers: list[str] = []
    if task == "vqa":
        answers = list(state["task"]["answers"])
        found = list(task_dataset(cfg, "vqa", "train").answers)
        if found != answers:
            raise CheckpointError(
                f"{ckpt_path} answers over {len(answers)} answers, the data set "
                f"{cfg.world.path} has another vocabulary of {len(found)}; evaluate on the "
                "data it was fine-tuned on"
            )
    model = build_task_model(cfg, len(tokenizer), tokenizer.pad_token_id, len(answers))
    if task == own:
        model.load_state_dict(state["model"])
    else:
        model.backbone.load_state_dict(backbone_weights(state))
    return model, cfg, tokenizer


def evaluate_checkpoint(
    ckpt_path: Path,
    task: str | None = None,
    split: str = "test",
    limit: int = 0,
    overrides: list[str] | None = None,
) -> dict:
    """The report: checkpoint, task, split, model kind, metrics and the trivial baseline."""
    model, cfg, tokenizer = load_task_model(ckpt_path, task, overrides)
    configure_threads(cfg.train.threads)
    device = resolve_device(cfg.train.device)
    model.to(device)
    metrics = evaluate_task(model, cfg, tokenizer, device, split, limit)
    n = metrics.pop("n")
    return {
        "checkpoint": str(ckpt_path),
        "task": model.task,
        "split": split,
        "model": "hybrid" if cfg.model.hybrid else "ann_only",
        "n_examples": n,
        "metrics": metrics,
        "baseline": {
            "name": BASELINE[model.task],
            "metrics": trivial_baseline(cfg, model.task, split, limit),
        },
    }


def markdown(report: dict) -> str:
    """The report as a Markdown table: metric, trivial baseline, model."""
    baseline = report["baseline"]
    lines = [
        f"## {report['task']} on {report['split']} ({report['n_examples']} examples)",
        "",
        f"checkpoint `{report['checkpoint']}` ({report['model']})",
        "",
        f"| metric | trivial baseline ({baseline['name']}) | {report['model']} |",
        "| --- | --- | --- |",
    ]
    for key, value in report["metrics"].items():
        base = baseline["metrics"].get(key)
        lines.append(f"| {key} | {'-' if base is None else f'{base:.2f}'} | {value:.2f} |")
    return "\n".join(lines) + "\n"


def write_report(report: dict, out: Path) -> tuple[Path, Path]:
    """Write `eval_<task>_<split>.json` and `.md` into `out`; returns both paths."""
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"eval_{report['task']}_{report['split']}"
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(markdown(report))
    return json_path, md_path


@cli_entry
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m ash_neuro.evaluate", description=__doc__)
    parser.add_argument("checkpoint", help="ckpt.pt from ash_neuro.finetune or ash_neuro.train")
    parser.add_argument("--task", help="default: the checkpoint's task (retrieval if none)")
    parser.add_argument("--split", default="test", help="train, val, test or compositional")
    parser.add_argument("--limit", type=int, default=0, help="first N images only (0: all)")
    parser.add_argument("--out", help="report folder (default: the checkpoint's)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="overrides train.device")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. world.path=...")
    # intermixed: overrides may follow options that follow the checkpoint
    args = parser.parse_intermixed_args(argv)
    ckpt = Path(args.checkpoint)
    report = evaluate_checkpoint(ckpt, args.task, args.split, args.limit, run_overrides(args))
    json_path, md_path = write_report(report, Path(args.out) if args.out else ckpt.parent)
    print(markdown(report), end="")
    print(f"written: {json_path}, {md_path}")
    return report


if __name__ == "__main__":
    main()
