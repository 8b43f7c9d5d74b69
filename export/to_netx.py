"""`python export/to_netx.py encoder.nir -o encoder.net`: a NIR graph in lava-dl's netx format.

Runs with the Lava environment's interpreter (`.venv-lava/bin/python`, made by `make
lava-env`). Lowers the graph as hardware/simulate.py does (same --dt and --scheme), quantises
it with the integers netx holds (hardware/quantize.py's NETX profile: every weight at exponent
0, every bias at exponent 6) and writes the file `lava.lib.dl.netx.hdf5.Network` loads
(hardware/netx.py describes the format). The integers are those of
`simulate.py --mode fixed_pt --quantise-as netx` with the same calibration, so the harness
runs this very network.

Calibration: --quantise-on cal.h5 (the in.h5 format) chooses the input scale and checks the
first layer's current on those inputs, as simulate.py does; without it the input is taken to
be binary spikes (scale 1) and the check assumes every input spikes at once.

Graphs netx cannot express are refused with one line naming the nodes (hardware/netx.py).
Exit status 0 on success, 2 for a graph, parameter or file it cannot write.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

try:  # Lava lives in its own environment (Python 3.10); say so rather than a traceback
    import lava.magma  # noqa: F401
except ImportError:
    print(
        "error: export/to_netx.py runs with the Lava environment's Python: "
        ".venv-lava/bin/python export/to_netx.py GRAPH -o OUT (make lava-env creates it)",
        file=sys.stderr,
    )
    sys.exit(2)

from ash_neuro.errors import cli_entry  # noqa: E402
from ash_neuro.nir_export.contract import read_sidecar, sidecar_path  # noqa: E402
from ash_neuro.nir_export.reference import SCHEMES  # noqa: E402
from hardware.graph import lower, read_graph  # noqa: E402
from hardware.io import read_inputs  # noqa: E402
from hardware.netx import RESET_OFFSET, netx_problems, write_netx  # noqa: E402
from hardware.plan import HarnessError  # noqa: E402
from hardware.simulate import resolve_dt  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python export/to_netx.py",
        description="Write a NIR graph as a lava-dl netx network (HDF5) for Loihi 2.",
    )
    parser.add_argument("graph", type=Path, help="NIR graph (HDF5), e.g. encoder.nir")
    parser.add_argument("-o", "--output", type=Path, required=True, help="netx file to write")
    parser.add_argument("--dt", type=float, default=None, help="seconds per step")
    parser.add_argument("--scheme", choices=SCHEMES, default="explicit")
    parser.add_argument(
        "--quantise-on", type=Path, help="calibration inputs (an in.h5); default binary spikes"
    )
    return parser.parse_args(argv)


@cli_entry
def main(argv: list[str] | None = None) -> int:
    import numpy as np

    from hardware.quantize import NETX, quantize_for_loihi

    args = parse_args(argv)
    started = time.perf_counter()
    graph = read_graph(args.graph)
    dt = resolve_dt(args.graph, args.dt, graph.metadata)
    plan = lower(graph, dt, args.scheme)
    problems = netx_problems(plan)
    if problems:
        raise HarnessError(f"netx cannot express {args.graph.name}: {'; '.join(problems)}")
    if args.quantise_on is None:
        calibration = np.ones((1, 1, *plan.input_shape))
    else:
        calibration = read_inputs(args.quantise_on, plan.input_shape)
    fixed, report = quantize_for_loihi(plan, calibration, NETX)
    attrs = dict(source_graph=str(args.graph), dt=dt, scheme=args.scheme, writer="ash-neuro")
    attrs["quantisation"] = report.to_json()
    try:
        write_netx(fixed, args.output, attrs)
    except OSError as exc:
        raise HarnessError(f"cannot write {args.output} ({exc.strerror or exc})") from None
    sidecar = sidecar_path(args.graph)
    steps = read_sidecar(args.graph).time_steps if sidecar.is_file() else "T"
    bits = 0 if report.inputs.binary else 24
    print("\n".join(report.parameter_lines()))
    print(f"wrote {args.output}: {len(fixed.layers)} dense CUBA layers, dt {dt:g} s, {args.scheme}")
    print(
        "load it: lava.lib.dl.netx.hdf5.Network(net_config="
        f"'{args.output.name}', input_message_bits={bits}, reset_interval={steps}, "
        f"reset_offset={RESET_OFFSET})"
    )
    if not report.inputs.binary:
        print(
            f"input: multiply the currents by {report.inputs.scale:.6g}, round, clip to "
            f"+-{2 ** (report.inputs.bits - 1) - 1} (graded spikes)"
        )
    print(f"to_netx: {time.perf_counter() - started:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
