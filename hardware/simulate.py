"""`python hardware/simulate.py encoder.nir --input in.h5 --out out.h5`: a NIR graph on Lava.

Runs with the Lava environment's interpreter (`.venv-lava/bin/python`, made by `make
lava-env`). Loads the graph, maps it onto lava-nc processes (hardware/graph.py,
hardware/mapping.py), quantises it for Loihi in fixed_pt (hardware/quantize.py), streams all
samples through one build of the network on Lava's Loihi 2 simulator
(hardware/lava_network.py), and writes:

in.h5   `input`  float32 (samples, T, *input_shape): the current (or spikes) of every step
out.h5  `output` float32 (samples, T, *output_shape): output spikes, aligned with the input
        (Lava's pipeline latency, one step per synaptic hop, is removed; each layer's lag is
        stored as attribute `latency_steps` of its activity dataset)
        `activity/<node>` float32 (samples, *layer_shape): spikes per neuron per sample, over
        the sample's T steps, for every neuron node (LIF, CubaLIF, IF)
        `spikes/<node>` uint8 (samples, T, *layer_shape): with --record-spikes, every neuron
        node's spike trains, aligned like `output`
        attributes: mode, dt, samples, time_steps, steps_run, build_s, run_s, ms_per_step,
        lava_nc, and in fixed_pt the quantisation report and `current_overflow` (JSON: per
        node, the peak 24-bit current as a share of the range and the neuron-steps wrapped)

fixed_pt chooses Loihi's integers from the run's own input, or from `--quantise-on cal.h5`
(same format as in.h5): a caller that streams a data set in parts passes the whole set there
so that every part runs on the same integers, as one compiled chip network would.

Time step: --dt, else `dt` of the exporter's sidecar `<graph>.json`, else of the graph's
metadata, else 1e-3 s. Every sample starts from rest (u = 0, v = v_reset).

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

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ash_neuro.errors import cli_entry  # noqa: E402
from hardware.graph import lower, read_graph  # noqa: E402
from hardware.plan import MODES, DeployError, LavaPlan  # noqa: E402
from hardware.supervise import die_with_parent, run_watched  # noqa: E402

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
        raise DeployError(f"--timeout must be positive, got {args.timeout}")
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
    plan = lower(graph, resolve_dt(args.graph, args.dt, graph.metadata))
    inputs = read_inputs(args.input, plan)
    for layer in plan.layers:
        print(f"lava: {layer.name}: {layer.kind} {layer.shape}, latency {layer.latency} steps")
    quantisation = []
    if args.mode == "fixed_pt":
        from hardware.quantize import quantize_for_loihi

        calibration = inputs if args.quantise_on is None else read_inputs(args.quantise_on, plan)
        plan, quantisation = quantize_for_loihi(plan, calibration)
        if args.quantise_on is not None:
            quantisation.insert(0, f"quantise: calibrated on {len(calibration)} samples")
        print("\n".join(quantisation))
    # Lava itself is imported only here, once the graph and the inputs have been checked.
    from hardware.lava_network import LavaProcessFailed, run_plan

    # fixed_pt records every layer's spikes to check the 24-bit currents they drove.
    fixed = args.mode == "fixed_pt"
    try:
        run = run_plan(plan, inputs, record_spikes=args.record_spikes or fixed)
    except LavaProcessFailed as exc:
        print(f"error: the Lava run failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    overflow = None
    if fixed:
        from hardware.quantize import current_overflow
        from hardware.runner import overflow_lines

        overflow = current_overflow(plan, inputs, run.spikes)
        print("\n".join(overflow_lines(overflow)))
        if not args.record_spikes:
            run = dataclasses.replace(run, spikes=None)
    samples, steps = inputs.shape[:2]
    print(
        f"lava: {args.mode}: {samples} samples x {steps} steps (+{plan.depth} latency) in "
        f"{run.run_s:.2f} s, {run.ms_per_step:.2f} ms/step; build {run.build_s:.2f} s"
    )
    write_outputs(args.out, run, plan, quantisation, overflow)
    return 0


def resolve_dt(graph: Path, dt: float | None, metadata: dict) -> float:
    """--dt, else the sidecar's `dt`, else the graph metadata's, else DEFAULT_DT."""
    if dt is None:
        sidecar = graph.with_name(graph.name + ".json")
        if sidecar.is_file():
            try:
                dt = json.loads(sidecar.read_text()).get("dt")
            except (OSError, ValueError, AttributeError) as exc:
                raise DeployError(f"{sidecar} is not a JSON object ({exc})") from None
    if dt is None:
        dt = _metadata_dt(metadata)
    dt = DEFAULT_DT if dt is None else dt
    if isinstance(dt, bool) or not isinstance(dt, int | float) or not math.isfinite(dt) or dt <= 0:
        raise DeployError(f"dt must be a positive number of seconds, got {dt!r}")
    return float(dt)


def _metadata_dt(metadata: dict) -> float | None:
    """`dt` in graph metadata, directly or inside a JSON string (the exporter's contract)."""
    if "dt" in metadata:
        return float(metadata["dt"])
    for value in metadata.values():
        if isinstance(value, str) and value.lstrip().startswith("{"):
            try:
                found = json.loads(value).get("dt")
            except (ValueError, AttributeError):
                continue
            if found is not None:
                return found
    return None


def read_inputs(path: Path, plan: LavaPlan) -> np.ndarray:
    """`input` of in.h5 as float64 (samples, T, *plan.input_shape), checked."""
    if not path.is_file():
        raise DeployError(f"input file {path} does not exist")
    try:
        with h5py.File(path, "r") as f:
            if "input" not in f:
                raise DeployError(f"{path} has no dataset 'input'")
            inputs = np.asarray(f["input"][()], dtype=np.float64)
    except (OSError, TypeError, ValueError) as exc:
        raise DeployError(f"cannot read {path} ({' '.join(str(exc).split())})") from None
    expected = ("samples", "T", *plan.input_shape)
    if inputs.ndim != len(expected) or inputs.shape[2:] != plan.input_shape:
        raise DeployError(
            f"{path}: input has shape {inputs.shape}, expected ({', '.join(map(str, expected))})"
        )
    if inputs.shape[0] < 1 or inputs.shape[1] < 1:
        raise DeployError(f"{path}: input has no samples or no time steps ({inputs.shape})")
    if not np.all(np.isfinite(inputs)):
        raise DeployError(f"{path}: input contains NaN or infinite values")
    return inputs


def write_outputs(
    path: Path, run, plan: LavaPlan, quantisation: list[str], overflow: dict | None = None
) -> None:
    """out.h5, written beside `path` and moved into place only when complete."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(temporary, "w") as f:
            f.create_dataset("output", data=run.output.astype(np.float32), compression="gzip")
            group = f.create_group("activity")
            for layer in plan.layers:
                counts = run.activity[layer.name].astype(np.float32)
                dataset = group.create_dataset(layer.name.replace("/", "."), data=counts)
                dataset.attrs.update(node=layer.name, kind=layer.kind, latency_steps=layer.latency)
            if run.spikes is not None:
                trains = f.create_group("spikes")
                for layer in plan.layers:
                    dataset = trains.create_dataset(
                        layer.name.replace("/", "."),
                        data=run.spikes[layer.name].astype(np.uint8),
                        compression="gzip",
                    )
                    dataset.attrs.update(node=layer.name, latency_steps=layer.latency)
            f.attrs.update(
                mode=plan.mode,
                dt=plan.dt,
                samples=run.output.shape[0],
                time_steps=run.output.shape[1],
                steps_run=run.steps,
                build_s=run.build_s,
                run_s=run.run_s,
                ms_per_step=run.ms_per_step,
                lava_nc=version("lava-nc"),
                written=time.strftime("%Y-%m-%dT%H:%M:%S"),
            )
            if quantisation:
                f.attrs["quantisation"] = "\n".join(quantisation)
            if overflow is not None:
                f.attrs["current_overflow"] = json.dumps(overflow)
        os.replace(temporary, path)
    except OSError as exc:
        raise DeployError(f"cannot write {path} ({exc})") from None
    finally:
        temporary.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
