"""Methods side by side: every method pre-trained and fine-tuned on the same data with the same
budget, mean ± std over seeds.

A row is a method: a name, its config and any overrides of it for pre-training (`METHODS`; a
sibling method adds one line; an ablation is a config plus overrides). For each method and seed
(`train.seed`, pre-training and fine-tuning alike) the script pre-trains
on a reduced procedural world, then fine-tunes the checkpoint on VQA, VE, NLVR and grounding
with `benchmarks/downstream.py`'s `run_task` (configs/finetune.yaml, evaluated on the test
split) and prints one table:

    pre-training val t2i/i2t R@1, R@5 (ITC ranking, the training loop's validation)
    VQA soft accuracy, VE accuracy, NLVR accuracy, grounding accuracy at IoU 0.5 (test split)
    spike rate (mean over the LIF layers on the val images), s/step (pre-training, from the
    logged throughput), parameters (the pre-trained backbone)

as mean ± sample standard deviation (ddof 1) over the seeds, then, per column, whether each
method's difference from the reference row (ASH-Nets) lies inside the seed spread (the two
mean ± std intervals overlap) or outside it.

Data efficiency (`--train-fraction 0.25`, ViCHA's comparison): every method pre-trains on the
first quarter of the world's training images (`train.image_fraction`, the same images for every
method and seed) for the same number of steps (`train.epochs` raised so that `--steps` binds: a
quarter of the images is a quarter of the steps per epoch); fine-tuning and evaluation are
unchanged. Those
rows are labelled with the fraction, kept beside the full-data ones in results.json, and each is
also compared with the full-data ASH-Nets row when that has run.

The default budget is reduced to fit 2 CPU cores (about 10 minutes per method for 3 seeds; 36
minutes for the first four rows, measured on a machine shared with other jobs; a ViCHA run costs
about 1.16 times an ASH-Nets run's CPU time, so the eight rows take about 1 h 20 min, and
`--train-fraction 0.25` as long again): a world of 2,000 train / 200 val / 200 test images at 64
px (the default world's generator and seed, fewer images); 120 pre-training steps of batch 64
(about 4 epochs) at a learning rate of 1e-3 after 10 warm-up steps (at the configs' 3e-4 and 50
warm-up steps ITC has not left ln(64) by step 100 and retrieval stays at chance); 30 fine-tuning
steps of batch 64 per task with 5 warm-up steps (`downstream.py` runs 300); one thread per run
(`train.threads=1`: on a shared 2-core machine two threads contend with any other load and run
several times slower). Every other setting is the method's config. These numbers rank the
methods at a small budget; they are not the full-size results (README, "Measured"). Runs resume:
a finished run (its result in results.json, at the same budget) is reused.

    .venv/bin/python benchmarks/methods.py [--seeds 0,1,2] [--steps 120] [--finetune-steps 30]
        [--methods ASH-Nets,GSHN] [--train-fraction 0.25] [--out runs/bench_methods]
        [key=value ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

# benchmarks/ is a folder of the repository, not a package: its root goes first on sys.path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ash_neuro.checkpoint import load_checkpoint
from ash_neuro.config import load_config
from ash_neuro.data.datasets import instance_maps, retrieval_split
from ash_neuro.data.generate import generate_world
from ash_neuro.data.sources import configured_source, locate_data
from ash_neuro.errors import cli_entry
from ash_neuro.models.factory import load_model, reads_instance_maps
from ash_neuro.train import train
from benchmarks.downstream import run_task
from benchmarks.pretrain_quality import step_time

# ViCHA's parts, each alone on top of ASH-Nets: the component and its loss weight, as in
# configs/vicha.yaml (every other setting is the component's default, which vicha.yaml states)
HITC = ["model.alignment.kind=hierarchical", "loss.weights.hitc=0.1"]
CONCEPTS = ["model.concepts.kind=tagged", "loss.weights.concept_tagging=1.0"]
MIM = ["model.mim.kind=mae", "loss.weights.mim=1.0"]
# (name, config[, overrides]): the rows of the table, the reference (differences are stated
# against it) first among the spiking methods. A sibling method is one more line.
METHODS: list[tuple] = [
    ("ANN-only", "configs/ann_only.yaml"),
    ("ASH-Nets", "configs/default.yaml"),
    ("GSHN", "configs/gshn.yaml"),
    ("GSHN (k-means segments)", "configs/gshn_kmeans.yaml"),
    ("CMAL", "configs/cmal.yaml"),
    ("CMAL (caption anchors)", "configs/cmal_caption_anchors.yaml"),
    ("ViCHA", "configs/vicha.yaml"),
    ("ASH-Nets + H-ITC", "configs/default.yaml", HITC),
    ("ASH-Nets + visual concepts", "configs/default.yaml", CONCEPTS),
    ("ASH-Nets + MIM", "configs/default.yaml", MIM),
]
REFERENCE = "ASH-Nets"
# the reduced world every method reads (the default world's generator, seed and image size)
WORLD = ["world.n_train=2000", "world.n_val=200", "world.n_test=200", "world.n_compositional=50"]
THREADS = ["train.threads=1"]
PRETRAIN = ["train.lr=1e-3", "train.warmup_steps=10", "train.eval_limit=200"]
FINETUNE = ["train.warmup_steps=5", "train.eval_limit=200"]
TASKS = {"vqa": "vqa_acc", "ve": "acc", "nlvr": "acc", "grounding": "acc_iou50"}
# (column, key of a run's result, digits)
COLUMNS = [
    ("val t2i R@1", "t2i_r1", 1),
    ("val t2i R@5", "t2i_r5", 1),
    ("val i2t R@1", "i2t_r1", 1),
    ("val i2t R@5", "i2t_r5", 1),
    ("VQA", "vqa", 1),
    ("VE", "ve", 1),
    ("NLVR", "nlvr", 1),
    ("grounding", "grounding", 1),
    ("spike rate", "spike_rate", 3),
    ("s/step", "s_per_step", 2),
    ("parameters", "parameters", 0),
]


@torch.no_grad()
def spike_rate(ckpt: Path) -> float | None:
    """Mean firing rate over the LIF layers on the val images the pre-training validated on
    (with their panoptic maps for an encoder that reads them); None without a spiking encoder."""
    loaded = load_model(ckpt)
    model = loaded.backbone
    if not model.hybrid:
        return None
    cfg = locate_data(loaded.cfg, loaded.data, {})
    source = configured_source(cfg, "val")
    data = retrieval_split(source, "val", cfg.train.eval_limit)
    maps = instance_maps(source, len(data.images)) if reads_instance_maps(cfg, source) else None
    rates = model.encode_image(data.images, maps).spike_rates
    return float(torch.stack([r.float() for r in rates.values()]).mean())


def run_method(
    config: str,
    seed: int,
    world: Path,
    out: Path,
    steps: int,
    ft_steps: int,
    extra: list[str],
    pretrain_only: list[str] = (),
) -> dict:
    """Pre-train `config` with `seed` on `world` for `steps` steps into `out` (with the
    `pretrain_only` overrides too), fine-tune and evaluate each task; returns the row's values."""
    overrides = [*WORLD, f"world.path={world}", f"train.seed={seed}", *THREADS, *extra]
    pretrain = [*overrides, *PRETRAIN, f"train.max_steps={steps}", *pretrain_only]
    cfg = load_config(config, pretrain)
    start = time.perf_counter()
    metrics = train(cfg, out / "pretrain", resume=True)
    row = {key: metrics[key] for key in ("t2i_r1", "t2i_r5", "i2t_r1", "i2t_r5")}
    row["pretrain_s"] = time.perf_counter() - start
    row.update(step_time(out / "pretrain"))
    ckpt = out / "pretrain" / "ckpt.pt"
    row["parameters"] = sum(v.numel() for v in load_checkpoint(ckpt)["model"].values())
    row["spike_rate"] = spike_rate(ckpt)
    finetune = [f"train.seed={seed}", *FINETUNE, *THREADS, *extra]
    for task, metric in TASKS.items():
        result = run_task(ckpt, task, ft_steps, out / task, finetune)
        row[task] = result["metrics"][metric]
    return row


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def cell(values: list, digits: int) -> str:
    if any(v is None for v in values):
        return "-"
    mean, std = mean_std(values)
    if digits == 0:
        return f"{mean / 1e6:.2f}M"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def row_label(name: str, fraction: float) -> str:
    """A method's row label at a training-image fraction (the name alone at 1)."""
    return name if fraction == 1 else f"{name} ({fraction:g} of the images)"


def seed_columns(results: dict, label: str, seeds: list[int]) -> dict[str, list] | None:
    """{column key: one value per seed that has run} of a row, or None if none has."""
    runs = [results[label][str(seed)] for seed in seeds if str(seed) in results.get(label, {})]
    return {key: [run[key] for run in runs] for _, key, _ in COLUMNS} if runs else None


def compare(label: str, values: dict, reference_label: str, reference: dict) -> None:
    """Print which of the quality columns differ from the reference row outside the seed
    spread (the mean ± std intervals do not overlap) and which inside it."""
    inside, outside = [], []
    for column, key, _ in COLUMNS[:8]:
        if None in values[key] or None in reference[key]:
            continue
        (a, sa), (b, sb) = mean_std(values[key]), mean_std(reference[key])
        text = f"{column} {a - b:+.1f}"
        (inside if abs(a - b) <= sa + sb else outside).append(text)
    vs = f"{label} vs {reference_label}"
    print(f"{vs}: outside the seed spread: {', '.join(outside) or 'none'}")
    print(f"{vs}: inside the seed spread: {', '.join(inside) or 'none'}")


def print_table(results: dict, names: list[str], seeds: list[int], fraction: float = 1) -> None:
    print("| method | " + " | ".join(name for name, _, _ in COLUMNS) + " |")
    print("|" + " --- |" * (len(COLUMNS) + 1))
    columns: dict[str, dict[str, list]] = {}
    for name in names:
        label = row_label(name, fraction)
        values = seed_columns(results, label, seeds)
        if values is None:
            continue
        columns[label] = values
        cells = [cell(values[key], digits) for _, key, digits in COLUMNS]
        runs = len(values["parameters"])
        print(f"| {label} ({runs} seeds) | " + " | ".join(cells) + " |")
    print()
    reference_label = row_label(REFERENCE, fraction)
    full_reference = seed_columns(results, REFERENCE, seeds) if fraction != 1 else None
    for label, values in columns.items():
        if label != reference_label and reference_label in columns:
            compare(label, values, reference_label, columns[reference_label])
        if full_reference is not None:  # the paper's comparison: less data against all of it
            compare(label, values, REFERENCE, full_reference)


@cli_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated train.seed values")
    parser.add_argument("--steps", type=int, default=120, help="pre-training steps")
    parser.add_argument("--finetune-steps", type=int, default=30, help="steps per task")
    parser.add_argument("--methods", default=",".join(row[0] for row in METHODS))
    parser.add_argument(
        "--train-fraction",
        type=float,
        default=1.0,
        help="pre-train every method on this share of the training images (train.image_fraction)",
    )
    parser.add_argument("--out", default="runs/bench_methods")
    parser.add_argument("overrides", nargs="*", help="config overrides for every run")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s]
    chosen = [m for m in args.methods.split(",") if m]
    names = [row[0] for row in METHODS]
    unknown = set(chosen) - set(names)
    if unknown:
        raise SystemExit(f"error: unknown method(s) {sorted(unknown)}; choose from {names}")
    if not 0 < args.train_fraction <= 1:
        raise SystemExit(f"error: --train-fraction {args.train_fraction} is not in (0, 1]")
    fraction = args.train_fraction
    methods = [row for row in METHODS if row[0] in chosen]
    out = Path(args.out)
    world = out / "world.h5"
    world_cfg = load_config("configs/default.yaml", [*WORLD, f"world.path={world}"]).world
    generate_world(world_cfg, world)
    saved = out / "results.json"
    results: dict = json.loads(saved.read_text()) if saved.exists() else {}
    budget = (args.steps, args.finetune_steps, args.overrides)
    # fewer images make shorter epochs: as many epochs as steps lets train.max_steps bind, so
    # every row pre-trains for the same number of steps whatever its share of the images
    fraction_overrides = (
        [f"train.image_fraction={fraction}", f"train.epochs={args.steps}"] if fraction != 1 else []
    )
    print(
        f"budget: world {', '.join(WORLD)} at 64 px; pre-training {args.steps} steps on "
        f"{fraction:g} of the training images, fine-tuning {args.finetune_steps} steps per task, "
        f"batch 64, one thread; pre-training {' '.join(PRETRAIN)}, fine-tuning "
        f"{' '.join(FINETUNE)}; seeds {seeds}"
    )
    for seed in seeds:
        for name, config, *method_overrides in methods:
            label = row_label(name, fraction)
            # a method's own overrides change its network: pre-training only (fine-tuning
            # takes the network from the checkpoint)
            own = [*(method_overrides[0] if method_overrides else []), *fraction_overrides]
            done = results.get(label, {}).get(str(seed))
            if done and done.get("budget") == list(budget) and done.get("own", []) == own:
                print(f"== {label}, seed {seed}: reusing {out / label / str(seed)}")
                continue
            print(f"== {label} ({' '.join([config, *own])}), seed {seed}")
            start = time.perf_counter()
            folder = out / label / str(seed)
            row = run_method(config, seed, world, folder, *budget[:2], list(args.overrides), own)
            row["budget"], row["own"] = list(budget), own
            row["wall_s"] = time.perf_counter() - start
            results.setdefault(label, {})[str(seed)] = row
            saved.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results, [row[0] for row in methods], seeds, fraction)


if __name__ == "__main__":
    main()
