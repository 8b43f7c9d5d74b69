"""`python -m ash_neuro.evaluate ckpt.pt [--task T] [--split test]`: a task's metrics.

Prints, and writes as `eval_<task>_<split>.json` and `.md` beside the checkpoint (or into
`--out`), the task's standard metrics next to its trivial baseline (`ash_neuro.tasks`). The
checkpoint rebuilds its network alone (`ash_neuro.models.load_model`); it is evaluated on the
data it was trained on unless overrides name other data (`data.kind=vqa_v2 data.root=...`,
`world.path=...`), and the report states when the data differ from the training data. A
fine-tuned checkpoint is evaluated on its own task by default; retrieval (ITC ranking, ITM
re-ranking per `finetune.itm_rerank_k`) runs on any checkpoint, pre-trained ones included.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ash_neuro.atomic import replace_atomically
from ash_neuro.config import parse_overrides
from ash_neuro.data.sources import configured_source, data_identity, locate_data
from ash_neuro.errors import AshError, cli_entry
from ash_neuro.loop import run_overrides
from ash_neuro.models.factory import load_model
from ash_neuro.runtime import configure_threads, resolve_device


def evaluate_checkpoint(
    ckpt_path: Path,
    task: str | None = None,
    split: str = "test",
    limit: int = 0,
    overrides: list[str] | None = None,
) -> dict:
    """The report: checkpoint, task, split, model kind, data, metrics and the trivial
    baseline."""
    if limit < 0:
        raise AshError(f"--limit must be 0 (every image) or a positive number, got {limit}")
    overrides = list(overrides or [])
    loaded = load_model(ckpt_path, task, overrides=overrides)
    cfg = locate_data(loaded.cfg, loaded.data, parse_overrides(overrides))
    configure_threads(cfg.train.threads)
    device = resolve_device(cfg.train.device)
    model = loaded.model.to(device)
    source = configured_source(cfg, split)
    evaluated_on = data_identity(cfg)
    metrics = model.task.evaluate(model, source, split, loaded.tokenizer, device, limit)
    n = metrics.pop("n")
    baseline = model.task.baseline(configured_source(cfg, "train"), source, split, limit)
    return {
        "checkpoint": str(ckpt_path),
        "task": model.name,
        "split": split,
        "model": "hybrid" if model.backbone.hybrid else "ann_only",
        "n_examples": n,
        "data": {
            "trained_on": loaded.data.describe(),
            "evaluated_on": evaluated_on.describe(),
            "same": evaluated_on.fingerprint == loaded.data.fingerprint,
        },
        "metrics": metrics,
        "baseline": {"name": model.task.baseline_name, "metrics": baseline},
    }


def markdown(report: dict) -> str:
    """The report as a Markdown table: metric, trivial baseline, model."""
    baseline, data = report["baseline"], report["data"]
    lines = [
        f"## {report['task']} on {report['split']} ({report['n_examples']} examples)",
        "",
        f"checkpoint `{report['checkpoint']}` ({report['model']})",
        "",
        f"data: {data['evaluated_on']}"
        + ("" if data["same"] else f"; **not the training data** ({data['trained_on']})"),
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
    for path, text in ((md_path, markdown(report)), (json_path, json.dumps(report, indent=2))):
        with replace_atomically(path) as tmp:
            tmp.write_text(text + ("" if text.endswith("\n") else "\n"))
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
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. data.root=...")
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
