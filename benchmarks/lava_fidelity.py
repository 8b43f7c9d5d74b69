"""Lava fidelity: the exported encoder on Lava (floating_pt, fixed_pt) against Norse.

Deploys a checkpoint's encoder (`ash_neuro.deploy`) on the first `--limit` test images and
prints, per mode: spike agreement per layer, the task metric with Norse and with Lava, energy
per image (SNN on the `loihi2` profile, whose per-operation figures are Loihi's since none are
published for Loihi 2, and the ANN-equivalent; estimates), and simulator seconds per image
beside the per-step floor (steps per image x measured ms per step) and Norse's seconds per
image. Writes the full deployment report to `--report` as well.

    .venv/bin/python benchmarks/lava_fidelity.py [--checkpoint runs/demo/ckpt.pt]
        [--nir runs/demo/encoder.nir] [--limit 50]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# hardware/ is a folder of the repository, not an installed package
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ash_neuro.deploy.records import DeploymentRecord  # noqa: E402
from ash_neuro.deploy.report import write_report  # noqa: E402
from ash_neuro.deploy.run import deploy  # noqa: E402
from ash_neuro.errors import cli_entry  # noqa: E402


def table(record: DeploymentRecord) -> str:
    """One Markdown row per Lava mode."""
    main = record.main_metric
    layers = list(record.layer_sizes)
    norse_metric = record.norse.metrics[main]
    head = (
        "| mode | "
        + " | ".join(f"agreement {layer}" for layer in layers)
        + f" | {main} Norse | {main} Lava | SNN uJ/image | ANN uJ/image "
        "| Lava s/image | per-step floor s/image | Norse s/image |"
    )
    lines = [head, "|---" * (len(layers) + 8) + "|"]
    for mode, result in record.modes.items():
        agree = " | ".join(f"{100 * result.agreement.layers[layer]:.3f}%" for layer in layers)
        sim, energy = result.simulator, result.energy
        lines.append(
            f"| {mode} | {agree} | {norse_metric:.2f} | {result.metrics[main]:.2f} | "
            f"{energy.snn_uj_per_image:.1f} | {energy.ann_uj_per_image:.1f} | "
            f"{sim.seconds_per_image:.3f} | {sim.step_floor_seconds_per_image:.3f} | "
            f"{record.norse.seconds_per_image:.4f} |"
        )
    return "\n".join(lines)


@cli_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=Path("runs/demo/ckpt.pt"))
    parser.add_argument("--nir", type=Path, help="default: encoder.nir beside the checkpoint")
    parser.add_argument("--task", default="retrieval")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=50, help="images")
    parser.add_argument("--report", type=Path, help="default: <checkpoint dir>/lava_fidelity")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args()
    nir_path = args.nir or args.checkpoint.with_name("encoder.nir")
    record, rasters = deploy(
        args.checkpoint, nir_path, args.task, args.split, args.limit, device=args.device
    )
    write_report(record, rasters, args.report or args.checkpoint.parent / "lava_fidelity")
    print(
        f"{record.task} on {record.split}: {record.n_images} images x "
        f"{record.rows_per_image} token rows x {record.time_steps} steps; "
        f"checkpoint {record.checkpoint}"
    )
    print(table(record))
    print("energy: estimates from published per-operation figures (see report.md), not measured")


if __name__ == "__main__":
    main()
