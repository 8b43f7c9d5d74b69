"""CPU seconds per pre-training step of each method, with one thread: a measure of a method's
cost that other jobs on a shared machine inflate far less than wall time.

For each config: the network at full size, the world's training captions in batches of the
config's size (anchor points where the config's losses read them), `--warmup` steps, then
`--steps` timed steps of forward, backward and AdamW update. Process time (`time.process_time`,
user + system CPU of this process) and wall time per step are printed, median over the steps;
the load average beside them says how busy the machine was.

    .venv/bin/python benchmarks/step_cost.py [--configs default,gshn,cmal] [--steps 10]
        [--world data/world.h5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ash_neuro.config import load_config
from ash_neuro.data.anchors import AnchorCollator
from ash_neuro.data.datasets import CaptionDataset, Collator
from ash_neuro.data.sources import configured_source
from ash_neuro.data.tokenizer import load_world_tokenizer
from ash_neuro.errors import cli_entry
from ash_neuro.models.factory import build_model, reads_instance_maps
from ash_neuro.objective import PretrainingObjective


def step_cost(config: str, world: str, warmup: int, steps: int) -> dict[str, float]:
    """Median process and wall seconds per training step of `config` on `world`."""
    cfg = load_config(config, [f"world.path={world}"])
    torch.manual_seed(0)
    source = configured_source(cfg, "train")
    tokenizer = load_world_tokenizer(world)
    max_len = cfg.model.text.max_len
    dataset = CaptionDataset(
        source, "train", tokenizer, max_len, with_panoptic=reads_instance_maps(cfg, source)
    )
    model = build_model(cfg, len(tokenizer), tokenizer.pad_token_id)
    objective = PretrainingObjective(model, cfg.loss, tokenizer)
    collate = Collator(tokenizer, max_len)
    if "anchors" in objective.batch_needs:
        collate = AnchorCollator(tokenizer, max_len, source, cfg.loss.anchors)
    loader = DataLoader(dataset, cfg.train.batch_size, shuffle=True, collate_fn=collate)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr)
    cpu, wall = [], []
    for step, batch in enumerate(loader):
        if step == warmup + steps:
            break
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        losses, _ = objective(batch)
        optimiser.zero_grad()
        losses["total"].backward()
        optimiser.step()
        if step >= warmup:
            cpu.append(time.process_time() - start_cpu)
            wall.append(time.perf_counter() - start_wall)
    parameters = sum(p.numel() for p in model.parameters())
    return {
        "cpu_s": statistics.median(cpu),
        "wall_s": statistics.median(wall),
        "parameters": parameters,
    }


@cli_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="default,gshn,cmal")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--world", default="data/world.h5")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| config | CPU s/step | wall s/step | load average | parameters |")
    print("| --- | --- | --- | --- | --- |")
    for name in args.configs.split(","):
        row = step_cost(f"configs/{name}.yaml", args.world, args.warmup, args.steps)
        load = os.getloadavg()[0]
        print(
            f"| {name} | {row['cpu_s']:.2f} | {row['wall_s']:.2f} | {load:.1f} | "
            f"{row['parameters'] / 1e6:.2f}M |",
            flush=True,
        )


if __name__ == "__main__":
    main()
