"""Pre-training quality: the hybrid ASH-Net against its ANN-only baseline, same budget and seeds.

Trains both configs (configs/default.yaml and configs/ann_only.yaml, the same network with
`model.spiking.kind: none` and the spiking loss weights at 0), then prints text-to-image and
image-to-text Recall@1/5/10 on the test and compositional splits, chance level, the mean spike
rate and seconds per training step.
Overrides apply to both runs (e.g. `loss.weights.mlm=0`, `train.batch_size=32`). A run under
--out is resumed: a finished one with the same config and steps is reused as it is, a killed one
continues, and one made with another config or world is refused in one line (change --out).

    .venv/bin/python benchmarks/pretrain_quality.py [--steps N] [--out runs/bench] [key=value ...]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from ash_neuro.checkpoint import load_checkpoint
from ash_neuro.config import load_config
from ash_neuro.data.datasets import retrieval_split
from ash_neuro.data.sources import configured_source, locate_data
from ash_neuro.errors import cli_entry
from ash_neuro.metrics import chance_recall
from ash_neuro.models.factory import load_model
from ash_neuro.train import evaluate, train

SPLITS = ("test", "compositional")
KS = (1, 5, 10)


@torch.no_grad()
def mean_spike_rate(model, images: torch.Tensor) -> float:
    if model.semantic_abstract_encoder is None:
        return float("nan")
    rates = model.encode_image(images[:256]).spike_rates
    return float(torch.stack([r.float().mean() for r in rates.values()]).mean())


def evaluate_run(ckpt_path: Path, splits=SPLITS) -> dict:
    loaded = load_model(ckpt_path)  # the network, tokenizer and data the checkpoint describes
    cfg = locate_data(loaded.cfg, loaded.data, {})
    model, tokenizer = loaded.backbone, loaded.tokenizer
    device = torch.device("cpu")
    result = {}
    for split in splits:
        data = retrieval_split(configured_source(cfg, split), split, limit=cfg.train.eval_limit)
        metrics = evaluate(model, cfg, tokenizer, device, split)
        metrics["n_images"] = len(data.images)
        metrics["captions_per_image"] = len(data.texts) / len(data.images)
        result[split] = metrics
        if split == splits[0]:
            result["spike_rate"] = mean_spike_rate(model, data.images)
    return result


def step_time(run_dir: Path) -> dict:
    """Seconds per training step from the logged throughput (excludes validation and set-up)."""
    batch = json.loads((run_dir / "config.json").read_text())["train"]["batch_size"]
    rates = [
        record["samples_per_s"]
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()
        if "samples_per_s" in (record := json.loads(line))
    ]
    return {"s_per_step": batch / (sum(rates) / len(rates))}


@cli_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=0, help="train.max_steps (0: the config's)")
    parser.add_argument("--out", default="runs/bench_pretrain")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    out = Path(args.out)
    runs = {"hybrid": "configs/default.yaml", "ann_only": "configs/ann_only.yaml"}
    overrides = list(args.overrides) + ([f"train.max_steps={args.steps}"] if args.steps else [])
    rows = {}
    for name, config in runs.items():
        run_dir = out / name
        timing_file = run_dir / "timing.json"
        cfg = load_config(config, overrides)
        start = time.perf_counter()
        train(cfg, run_dir, resume=True)  # a finished run of this config: reused
        steps = load_checkpoint(run_dir / "ckpt.pt")["progress"]["step"]
        if not timing_file.exists() or json.loads(timing_file.read_text())["steps"] != steps:
            # a reused run keeps the time it took when it trained
            wall = time.perf_counter() - start
            timing_file.write_text(json.dumps({"wall_s": wall, "steps": steps}))
        timing = json.loads(timing_file.read_text())
        rows[name] = {**evaluate_run(run_dir / "ckpt.pt"), **timing, **step_time(run_dir)}
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    print_table(rows)


def print_table(rows: dict) -> None:
    first = next(iter(rows.values()))
    header = "| model | split | " + " | ".join(f"t2i R@{k}" for k in KS)
    header += " | " + " | ".join(f"i2t R@{k}" for k in KS) + " | spike rate | s/step |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for split in SPLITS:
        n, cpi = first[split]["n_images"], round(first[split]["captions_per_image"])
        chance = chance_recall([range(cpi)] * n, KS)
        cells = [f"{chance[f'{way}_r{k}']:.2f}" for way in ("t2i", "i2t") for k in KS]
        print(f"| chance | {split} | " + " | ".join(cells) + " | - | - |")
        for name, row in rows.items():
            m = row[split]
            cells = [f"{m[f't2i_r{k}']:.1f}" for k in KS] + [f"{m[f'i2t_r{k}']:.1f}" for k in KS]
            rate = "-" if math.isnan(row["spike_rate"]) else f"{row['spike_rate']:.3f}"
            cells += [rate, f"{row['s_per_step']:.3f}"]
            print(f"| {name} | {split} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
