"""`python export/to_nir.py ckpt.pt [-o encoder.nir]`: the spiking encoder as a NIR graph.

Writes the semantic abstract encoder of a checkpoint (pre-trained or fine-tuned) as a NIR graph
(HDF5) and its contract (input encoding, T, dt, shapes) as graph metadata and as
`<output>.json`; verifies the written file against the encoder on sample inputs before it
replaces the output (see `ash_neuro/nir_export/`). Exit status 0 on success, 1 when the
written graph does not reproduce the encoder, 2 for a bad checkpoint, layer or output path (one
`error:` line).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

# This checkout's ash_neuro, not whichever one the environment has installed (a worktree's
# script would otherwise run another checkout's exporter).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# Importing norse triggers torch's `torch.jit.script` deprecation notice on stderr.
warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)

from ash_neuro.errors import cli_entry  # noqa: E402
from ash_neuro.nir_export.contract import FIRST_LAYERS, ExportVerificationError  # noqa: E402
from ash_neuro.nir_export.from_checkpoint import export_checkpoint  # noqa: E402
from ash_neuro.nir_export.writer import ExportReport  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python export/to_nir.py",
        description="Export the spiking semantic abstract encoder of a checkpoint to NIR.",
    )
    parser.add_argument(
        "checkpoint",
        help="ckpt.pt written by `python -m ash_neuro.train` or `python -m ash_neuro.finetune`",
    )
    parser.add_argument(
        "-o",
        "--output",
        default=None,
        help="NIR file to write (default: encoder.nir beside the checkpoint); the contract "
        "goes to OUTPUT.json",
    )
    parser.add_argument(
        "--samples", type=int, default=8, help="images used to verify the export (default 8)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample inputs")
    parser.add_argument(
        "--first-layer",
        choices=FIRST_LAYERS,
        default="chip",
        help="where the encoder's first Affine runs: in the graph, on the chip (default), or on "
        "the host, left out of the graph, whose Input then takes that layer's outputs "
        "one-to-one into the first LIF population; the contract records which",
    )
    return parser.parse_args(argv)


def describe(report: ExportReport, total_s: float) -> str:
    counts = Counter(report.node_types)
    nodes = ", ".join(f"{kind} x{n}" if n > 1 else kind for kind, n in counts.items())
    layers = ", ".join(
        f"node {name} {100 * value:.2f}%"
        for name, value in report.agreement.items()
        if name not in ("all", "output")
    )
    lines = [
        f"wrote {report.path} and {report.sidecar}",
        f"nodes: {nodes}",
        f"samples: {report.samples}",
        f"spike agreement, norse.from_nir of the written file vs the encoder: "
        f"{100 * report.agreement['output']:.2f}% of output spikes (per LIF: {layers})",
        f"spike agreement, NIR's equations (NumPy, forward Euler) vs the encoder: "
        f"{100 * report.reference_agreement['output']:.2f}% of output spikes, "
        f"{100 * report.reference_agreement['all']:.2f}% over all layers",
        f"output spike rate: {report.output_spike_rate:.4f} per neuron per step",
        *(f"note: {note}" for note in report.notes),
        f"export time: {report.seconds:.2f} s (graph, write, read back, verify); "
        f"{total_s:.2f} s with loading the checkpoint and making the samples",
    ]
    return "\n".join(lines)


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        report = export_checkpoint(
            args.checkpoint, args.output, args.samples, args.seed, args.first_layer
        )
    except ExportVerificationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(describe(report, time.perf_counter() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
