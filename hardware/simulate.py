"""`python hardware/simulate.py encoder.nir --input in.h5 --out out.h5`: a NIR graph on Lava.

Runs with the Lava environment's interpreter (`.venv-lava/bin/python`, made by `make
lava-env`). Loads the graph, maps it onto lava-nc processes (hardware/graph.py,
hardware/mapping.py), quantises it for Loihi in fixed_pt (hardware/quantize.py), streams all
samples through one build of the network on Lava's Loihi 2 simulator
(hardware/lava_network.py), reads the inputs from in.h5 and writes out.h5 (both described in
hardware/io.py): the output spikes, aligned with the input (Lava's pipeline latency removed),
every neuron node's activity, with --record-spikes its spike trains, and the run's attributes
(mode, dt, steps_run, build_s, run_s, ms_per_step, lava_nc, and in fixed_pt the quantisation
report, a `hardware.quantisation_report.QuantisationReport`: every parameter's rounding and,
per node, the peak 24-bit current as a share of the range and the neuron-steps wrapped).

fixed_pt chooses Loihi's integers from the run's own input, or from `--quantise-on cal.h5`
(same format as in.h5): a caller that streams a data set in parts passes the whole set there
so that every part runs on the same integers, as one compiled chip network would.

Time step: --dt, else `dt` of the exporter's sidecar `<graph>.json` (an `EncoderContract`),
else of the graph's metadata, else 1e-3 s. Every sample starts from rest: i = 0 and v = v_leak
(an IF, which has no leak, at v = v_reset), as in ash_neuro/nir_export/reference.py.

Exit status: 0 success, 1 a Lava process failed, 2 bad graph/parameter/input, 3 timeout; each
failure is one `error:` line on stderr. The network runs in a worker process in its own
process group, watched by this process, which kills the whole group (and unlinks its shared
memory) on timeout or SIGTERM/SIGINT (hardware/supervise.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ash_neuro.atomic import remove_stale_temporaries  # noqa: E402
from ash_neuro.errors import cli_entry  # noqa: E402
from ash_neuro.nir_export.contract import NIRExportError, read_sidecar, sidecar_path  # noqa: E402
from ash_neuro.nir_export.reference import SCHEMES  # noqa: E402
from hardware.graph import lower, read_graph  # noqa: E402
from hardware.io import LavaResult, read_inputs, write_outputs  # noqa: E402
from hardware.plan import (  # noqa: E402
    MODES,
    QUANTISE_PROFILES,
    HarnessError,
    LavaPlan,
    loihi2_problems,
)
from hardware.quantisation_report import QuantisationReport  # noqa: E402
from hardware.supervise import die_with_parent, run_watched  # noqa: E402

BACKENDS = ("sim", "loihi2")
DEFAULT_DT = 1e-3
DEFAULT_TIMEOUT = 3600.0
EXIT_FAILED = 1
EXIT_TIMEOUT = 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python hardware/simulate.py",
        description="Run a NIR graph on Lava's Loihi 2 simulator.",
    )
    parser.add_argument("graph", type=Path, help="NIR graph (HDF5), e.g. encoder.nir")
    parser.add_argument("--input", required=True, type=Path, help="in.h5 with dataset `input`")
    parser.add_argument("--out", required=True, type=Path, help="out.h5 to write")
    parser.add_argument("--dt", type=float, default=None, help="seconds per step")
    parser.add_argument("--mode", choices=MODES, default="floating_pt")
    parser.add_argument(
        "--scheme",
        choices=SCHEMES,
        default="explicit",
        help="order of a current-based neuron's updates: explicit (forward Euler, Norse's "
        "LIFBox convention; default) or semi-implicit (current first: snnTorch, Norse's "
        "LIFCell, Loihi); see hardware/README.md",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="sim",
        help="sim: Lava's Loihi 2 simulator on the CPU; loihi2: the chip, through Intel's "
        "Lava extension for Loihi (fixed_pt only; hardware/README.md)",
    )
    parser.add_argument(
        "--quantise-as",
        choices=QUANTISE_PROFILES,
        default="loihi",
        help="fixed_pt integers: loihi (a weight exponent per connection) or netx (those "
        "export/to_netx.py writes: weight exponent 0, bias exponent 6)",
    )
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds before the run is killed"
    )
    parser.add_argument(
        "--quantise-on",
        type=Path,
        help="fixed_pt: calibration inputs (an in.h5) to choose Loihi's integers from, "
        "default the run's own input; give every part of a data set the same file",
    )
    parser.add_argument(
        "--record-spikes",
        action="store_true",
        help="also write every neuron node's spike trains (group `spikes`)",
    )
    parser.add_argument("--worker-of", type=int, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker_of is not None:
        return work(args)
    if not args.timeout > 0:
        raise HarnessError(f"--timeout must be positive, got {args.timeout}")
    # a worker killed mid-write (the watchdog's SIGKILL, or the user's) left its out.h5 temporary
    remove_stale_temporaries(args.out)
    argv = sys.argv[1:] if argv is None else argv
    command = [sys.executable, str(Path(__file__).resolve()), *argv]
    status = run_watched(command + ["--worker-of", str(os.getpid())], args.timeout)
    if status is None:
        print(
            f"error: the Lava run did not finish within --timeout {args.timeout:g} s; "
            "it was stopped and its processes killed",
            file=sys.stderr,
        )
        return EXIT_TIMEOUT
    if status < 0:
        print(f"error: the Lava worker was killed by signal {-status}", file=sys.stderr)
        return EXIT_FAILED
    return status


def work(args: argparse.Namespace) -> int:
    """The worker: everything that touches the graph, the data and Lava."""
    die_with_parent(args.worker_of)
    graph = read_graph(args.graph)
    plan = lower(graph, resolve_dt(args.graph, args.dt, graph.metadata), args.scheme)
    inputs = read_inputs(args.input, plan.input_shape)
    for layer in plan.layers:
        notes = [] if layer.spiking else ["readout: its voltage is the output"]
        notes += ["recurrent"] if layer.recurrent else []
        notes += [] if layer.uniform_decays else ["per-neuron decays"]
        print(
            f"lava: {layer.name}: {layer.kind} {layer.shape}, latency {layer.latency} steps"
            + "".join(f"; {note}" for note in notes)
        )
    quantisation = None
    if args.mode == "fixed_pt":
        from hardware.quantize import PROFILES, quantize_for_loihi

        calibration = (
            inputs if args.quantise_on is None else read_inputs(args.quantise_on, plan.input_shape)
        )
        plan, quantisation = quantize_for_loihi(plan, calibration, PROFILES[args.quantise_as])
        if args.quantise_on is not None:
            quantisation = dataclasses.replace(quantisation, calibration_samples=len(calibration))
        print("\n".join(quantisation.parameter_lines()))
    if args.backend == "loihi2":  # the graph first: it can be checked without the chip
        from hardware.lava_network import loihi2_missing

        problems = loihi2_problems(plan)
        if problems:
            raise HarnessError(f"--backend loihi2 cannot run this graph: {'; '.join(problems)}")
        missing = loihi2_missing()
        if missing:
            raise HarnessError(missing)
    # Lava itself is imported only here, once the graph and the inputs have been checked.
    from hardware.lava_network import LavaProcessFailed, run_plan

    # fixed_pt records every layer's spikes to check the 24-bit currents they drove.
    fixed = args.mode == "fixed_pt"
    try:
        run = run_plan(plan, inputs, args.record_spikes or fixed, args.backend)
    except LavaProcessFailed as exc:
        print(f"error: the Lava run failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if fixed:
        from hardware.quantize import current_overflow

        quantisation = quantisation.with_overflow(current_overflow(plan, inputs, run.spikes))
        print("\n".join(quantisation.overflow_lines()))
        if not args.record_spikes:
            run = dataclasses.replace(run, spikes=None)
    samples, steps = inputs.shape[:2]
    print(
        f"lava: {args.mode} ({args.scheme}, {args.backend}): {samples} samples x {steps} steps "
        f"(+{plan.depth} latency) in {run.run_s:.2f} s, {run.ms_per_step:.2f} ms/step; build "
        f"{run.build_s:.2f} s"
    )
    extra = {"backend": args.backend}
    if fixed:
        extra["quantise_as"] = args.quantise_as
    write_outputs(args.out, _result(run, plan, quantisation, extra))
    return 0


def resolve_dt(graph: Path, dt: float | None, metadata: dict) -> float:
    """--dt, else the sidecar's `dt`, else the graph metadata's, else DEFAULT_DT."""
    if dt is None:
        sidecar = sidecar_path(graph)
        if sidecar.is_file():
            try:
                dt = read_sidecar(graph).dt
            except OSError as exc:
                raise HarnessError(f"cannot read {sidecar} ({exc.strerror or exc})") from None
            except NIRExportError as exc:
                raise HarnessError(f"{sidecar}: {' '.join(str(exc).split())}") from None
    if dt is None:
        dt = _metadata_dt(metadata)
    dt = DEFAULT_DT if dt is None else dt
    if isinstance(dt, bool) or not isinstance(dt, int | float) or not math.isfinite(dt) or dt <= 0:
        raise HarnessError(f"dt must be a positive number of seconds, got {dt!r}")
    return float(dt)


def _metadata_dt(metadata: dict) -> float | None:
    """`dt` in graph metadata, directly or inside a JSON string (the exporter's contract)."""
    if "dt" in metadata:
        try:
            return float(metadata["dt"])
        except (TypeError, ValueError):
            raise HarnessError(
                f"the graph's metadata dt is {metadata['dt']!r}, not a number of seconds; pass --dt"
            ) from None
    for value in metadata.values():
        if isinstance(value, str) and value.lstrip().startswith("{"):
            try:
                found = json.loads(value).get("dt")
            except (ValueError, AttributeError):
                continue
            if found is not None:
                return found
    return None


def _result(
    run, plan: LavaPlan, quantisation: QuantisationReport | None, extra: dict
) -> LavaResult:
    """What out.h5 stores of a run (`lava_network.LavaRun`) of `plan`."""
    attrs = dict(
        mode=plan.mode,
        dt=plan.dt,
        scheme=plan.scheme,
        output_quantity="spikes" if plan.output_spiking else "voltage",
        **extra,
        steps_run=run.steps,
        build_s=run.build_s,
        run_s=run.run_s,
        ms_per_step=run.ms_per_step,
        lava_nc=version("lava-nc"),
        written=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    return LavaResult(
        output=run.output,
        activity=run.activity,
        latency={layer.name: layer.latency for layer in plan.layers},
        spikes={} if run.spikes is None else {name: run.spikes[name] for name in run.spikes},
        attrs=attrs,
        kinds={layer.name: layer.kind for layer in plan.layers if layer.name in run.activity},
        quantisation=quantisation,
    )


if __name__ == "__main__":
    sys.exit(main())
