"""Lava simulator throughput: the encoder's token rows streamed one after another (one copy
of the network) against token-parallel (one copy per token row, all rows of an image at once),
in floating_pt and fixed_pt, on the same currents.

Prints per layout and mode: images per second of the whole exchange with the harness (build,
run, files; `SimulatorTiming.wall_s`), Lava's steps and ms per step, the simulator's steps per
image, and the spike agreement with Norse (floating_pt must be 100%, fixed_pt close), after
checking every layer spikes. Lava's CPU simulator wall time, not chip time: the chip model's
figures are in the deployment report. Target (issue 15): >= 20 images/s token-parallel in
floating_pt and fixed_pt for the default encoder.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lava_throughput.py \
        [--checkpoint runs/demo/ckpt.pt] [--nir runs/demo/encoder.nir] [--limit 64] \
        [--chunk 64]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

# hardware/ is a folder of the repository, not an installed package
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ash_neuro.data.datasets import images_to_float  # noqa: E402
from ash_neuro.data.sources import configured_source, locate_data  # noqa: E402
from ash_neuro.deploy.encoder_runs import run_lava, run_norse, spike_agreement  # noqa: E402
from ash_neuro.deploy.run import encoder_contract, encoder_currents, load_hybrid  # noqa: E402
from ash_neuro.errors import cli_entry  # noqa: E402
from ash_neuro.runtime import resolve_device  # noqa: E402
from hardware.runner import MODES  # noqa: E402

LAYOUTS = ("streaming", "token_parallel")


@cli_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=Path("runs/demo/ckpt.pt"))
    parser.add_argument("--nir", type=Path, help="default: encoder.nir beside the checkpoint")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=64, help="images")
    parser.add_argument("--chunk", type=int, default=64, help="images per Lava build")
    parser.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=LAYOUTS)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    args = parser.parse_args()
    nir_path = args.nir or args.checkpoint.with_name("encoder.nir")
    contract = encoder_contract(nir_path)
    loaded = load_hybrid(args.checkpoint, "retrieval")
    model = loaded.backbone.eval()
    source = configured_source(locate_data(loaded.cfg, loaded.data, {}), args.split)
    images = min(args.limit, len(source))
    pixels = images_to_float(np.stack([source.image(i) for i in range(images)]))
    _, currents = encoder_currents(model, pixels, resolve_device("cpu"), 0)
    norse = run_norse(model, currents)
    names = list(norse.layers)
    silent = [name for name, spikes in norse.layers.items() if not spikes.any()]
    if silent:
        raise SystemExit(f"error: layers {silent} never spike: the comparison would be vacuous")
    rows = contract.tokens_per_image
    print(
        f"{images} images x {rows} token rows x {contract.time_steps} steps, layers "
        f"{dict(zip(names, contract.layer_sizes))}, {args.chunk} images per Lava build; "
        f"Norse firing rates {norse.firing_rates()}"
    )
    print(
        "| layout | mode | images/s | s/image | build s | run s | Lava steps | ms/step "
        "| steps/image | agreement with Norse |"
    )
    print("|---" * 10 + "|")
    for layout in args.layouts:
        for mode in args.modes:
            lava = run_lava(nir_path, currents, rows, names, mode, args.chunk, layout)
            timing = lava.simulator
            agreement = spike_agreement(lava.layers, norse.layers)
            per_layer = ", ".join(f"{k} {100 * v:.3f}%" for k, v in agreement.layers.items())
            print(
                f"| {layout} | {mode} | {timing.images_per_s:.2f} | "
                f"{timing.seconds_per_image:.3f} | {timing.build_s:.1f} | {timing.run_s:.1f} | "
                f"{timing.steps} | {timing.ms_per_step:.2f} | "
                f"{timing.steps / images:.1f} | {per_layer} |",
                flush=True,
            )
    print("Lava CPU simulator wall time (build + run + files), not chip time")


if __name__ == "__main__":
    main()
