"""Pre-training on a quarter of the images: what CMAL claims (arXiv 2410.12595: its largest
gains on visual entailment and referring expressions, with less pre-training data), measured on
the procedural world against ASH-Nets and the ANN-only baseline, mean ± std over seeds.

Each method and seed pre-trains on the first quarter of the training images of `methods.py`'s
reduced world (`train.image_fraction` 0.25: 500 of its 2,000; the same 120 steps, so each
image is seen about four times as often), then fine-tunes on visual entailment and grounding
with the whole training split (`downstream.py`'s `run_task`, `configs/finetune.yaml`) and is
evaluated on the test split. Every other setting is `methods.py`'s (lr 1e-3 after 10 warm-up
steps, 30 fine-tuning steps, one thread); its table's full-data VE and grounding, where
`methods.py` has run with the same budget in `--full` (default runs/bench_methods), are printed
beside. Per column, each method's difference from the others is stated as inside the seed
spread (the mean ± std intervals overlap) or outside it. Runs resume (results.json).

    .venv/bin/python benchmarks/quarter_data.py [--seeds 0,1,2] [--fraction 0.25] [--steps 120]
        [--finetune-steps 30] [--methods CMAL,ASH-Nets,ANN-only] [--out runs/bench_quarter]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

# benchmarks/ is a folder of the repository, not a package: its root goes first on sys.path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ash_neuro.config import load_config
from ash_neuro.data.generate import generate_world
from ash_neuro.errors import cli_entry
from ash_neuro.train import train
from benchmarks.downstream import run_task
from benchmarks.methods import FINETUNE, METHODS, PRETRAIN, THREADS, WORLD, cell, mean_std

COMPARED = ("CMAL", "ASH-Nets", "ANN-only")
TASKS = {"ve": "acc", "grounding": "acc_iou50"}
COLUMNS = [("VE", "ve"), ("grounding", "grounding")]


def run_method(
    config: str, seed: int, world: Path, out: Path, fraction: float, steps: int, ft_steps: int
) -> dict:
    """Pre-train `config` with `seed` on the first `fraction` of the training images, fine-tune and
    evaluate VE and grounding; returns the row's values."""
    overrides = [*WORLD, f"world.path={world}", f"train.seed={seed}", *THREADS]
    # epochs=steps: the step budget binds, not the configs' 4 epochs (28 steps of 500 images)
    pretrain = [
        *PRETRAIN,
        f"train.max_steps={steps}",
        f"train.image_fraction={fraction}",
        f"train.epochs={steps}",
    ]
    metrics = train(load_config(config, [*overrides, *pretrain]), out / "pretrain", resume=True)
    row = {key: metrics[key] for key in ("t2i_r1", "i2t_r1")}
    finetune = [f"train.seed={seed}", *FINETUNE, *THREADS]
    for task, metric in TASKS.items():
        result = run_task(out / "pretrain" / "ckpt.pt", task, ft_steps, out / task, finetune)
        row[task] = result["metrics"][metric]
    return row


def full_data(path: Path, seeds: list[int], budget: tuple) -> dict[str, dict[str, list]]:
    """VE and grounding of `methods.py`'s results at the same steps, per method."""
    if not path.is_file():
        return {}
    results = json.loads(path.read_text())
    out = {}
    for name in COMPARED:
        runs = [results.get(name, {}).get(str(seed)) for seed in seeds]
        if all(run and run["budget"][:2] == list(budget) for run in runs):
            out[name] = {key: [run[key] for run in runs] for _, key in COLUMNS}
    return out


def print_table(quarter: dict, full: dict, seeds: list[int], fraction: float) -> None:
    print(
        f"| method | VE, {fraction:.0%} of the images | grounding, {fraction:.0%} of the images "
        "| VE, all | grounding, all |"
    )
    print("| --- | --- | --- | --- | --- |")
    for name, values in quarter.items():
        cells = [cell(values[key], 1) for _, key in COLUMNS]
        cells += [cell(full[name][key], 1) if name in full else "-" for _, key in COLUMNS]
        print(f"| {name} ({len(seeds)} seeds) | " + " | ".join(cells) + " |")
    print()
    for a, b in itertools.combinations(quarter, 2):
        for label, key in COLUMNS:
            (ma, sa), (mb, sb) = mean_std(quarter[a][key]), mean_std(quarter[b][key])
            where = "inside" if abs(ma - mb) <= sa + sb else "outside"
            print(f"{a} vs {b}, {label}: {ma - mb:+.1f} ({where} the seed spread)")


@cli_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated train.seed values")
    parser.add_argument(
        "--fraction", type=float, default=0.25, help="share of the training images pre-trained on"
    )
    parser.add_argument("--steps", type=int, default=120, help="pre-training steps")
    parser.add_argument("--finetune-steps", type=int, default=30, help="steps per task")
    parser.add_argument("--methods", default=",".join(COMPARED))
    parser.add_argument("--out", default="runs/bench_quarter")
    parser.add_argument("--full", default="runs/bench_methods", help="methods.py's folder")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s]
    configs = dict(METHODS)
    chosen = [m for m in args.methods.split(",") if m]
    unknown = [m for m in chosen if m not in configs]
    if unknown:
        raise SystemExit(f"error: unknown method(s) {unknown}; choose from {list(configs)}")
    out = Path(args.out)
    world = out / "world.h5"
    generate_world(
        load_config("configs/default.yaml", [*WORLD, f"world.path={world}"]).world, world
    )
    saved = out / "results.json"
    results: dict = json.loads(saved.read_text()) if saved.exists() else {}
    budget = [args.fraction, args.steps, args.finetune_steps]
    print(
        f"budget: pre-training on the first {args.fraction:.0%} of the training images of "
        f"{WORLD[0]}, "
        f"{args.steps} steps; fine-tuning VE and grounding on every training image, "
        f"{args.finetune_steps} steps each; {' '.join(PRETRAIN)}; seeds {seeds}"
    )
    for seed in seeds:
        for name in chosen:
            done = results.get(name, {}).get(str(seed))
            if done and done.get("budget") == budget:
                print(f"== {name}, seed {seed}: reusing {out / name / str(seed)}")
                continue
            print(f"== {name} ({configs[name]}), seed {seed}")
            start = time.perf_counter()
            row = run_method(
                configs[name],
                seed,
                world,
                out / name / str(seed),
                args.fraction,
                args.steps,
                args.finetune_steps,
            )
            row["budget"], row["wall_s"] = budget, time.perf_counter() - start
            results.setdefault(name, {})[str(seed)] = row
            saved.write_text(json.dumps(results, indent=2) + "\n")
    quarter = {
        name: {key: [results[name][str(s)][key] for s in seeds] for _, key in COLUMNS}
        for name in chosen
    }
    full = full_data(Path(args.full) / "results.json", seeds, (args.steps, args.finetune_steps))
    print_table(quarter, full, seeds, args.fraction)


if __name__ == "__main__":
    main()
