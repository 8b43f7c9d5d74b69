"""`python -m ash_neuro.deploy ckpt.pt encoder.nir --task retrieval`: the hybrid network with
its spiking encoder on Lava's Loihi 2 simulator, against the same network in PyTorch.

The command line of `ash_neuro.deploy.run.deploy`: runs it, writes the report folder
(`ash_neuro.deploy.report`), prints report.md and the files written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ash_neuro.deploy import DeployError
from ash_neuro.deploy.encoder_runs import CHIP, CHUNK
from ash_neuro.deploy.records import DeploymentRecord
from ash_neuro.deploy.report import write_report
from ash_neuro.deploy.run import deploy
from ash_neuro.energy import LAYOUTS
from ash_neuro.errors import cli_entry
from hardware.runner import MODES


@cli_entry
def main(argv: list[str] | None = None) -> DeploymentRecord:
    parser = argparse.ArgumentParser(
        prog="python -m ash_neuro.deploy", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "checkpoint",
        type=Path,
        help="ckpt.pt with a spiking encoder, pre-trained or fine-tuned (a task other than "
        "retrieval: fine-tuned for it)",
    )
    parser.add_argument("nir", type=Path, help="its encoder.nir (export/to_nir.py)")
    parser.add_argument(
        "--task", default="retrieval", help="retrieval (default), vqa, nlvr, ve or grounding"
    )
    parser.add_argument("--split", default="test", help="train, val, test or compositional")
    parser.add_argument("--limit", type=int, default=16, help="first N images of the split")
    parser.add_argument("--mode", choices=MODES, help="one Lava mode (default: both)")
    parser.add_argument("--report", type=Path, help="report folder (default: <ckpt dir>/deploy)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--chunk", type=int, default=CHUNK, help="images per Lava build")
    parser.add_argument(
        "--chip",
        default=CHIP,
        help="energy profile: loihi2, loihi (ash_neuro/energy_profiles) or a profile .json",
    )
    parser.add_argument(
        "--layout",
        default="token_parallel",
        choices=LAYOUTS,
        help="how the chip holds an image's token rows: all at once on one copy of the encoder "
        "each (token_parallel, default: T steps per image) or one after another through one "
        "copy (streaming: rows x T steps), on Lava's simulator and in the chip model",
    )
    parser.add_argument(
        "--frontier",
        type=Path,
        help="a frontier.json of benchmarks/efficiency.py: report.md says where this "
        "deployment's energy sits against its points",
    )
    args = parser.parse_args(argv)
    if args.frontier is not None and not args.frontier.is_file():
        raise DeployError(f"--frontier {args.frontier} not found; run benchmarks/efficiency.py")
    modes = (args.mode,) if args.mode else MODES
    record, rasters = deploy(
        args.checkpoint,
        args.nir,
        args.task,
        args.split,
        args.limit,
        modes,
        args.device,
        args.chunk,
        chip=args.chip,
        layout=args.layout,
    )
    folder = args.report or args.checkpoint.parent / "deploy"
    written = write_report(record, rasters, folder, args.frontier)
    print((folder / "report.md").read_text(), end="")
    print("written: " + ", ".join(str(p) for p in written))
    return record


if __name__ == "__main__":
    main()
