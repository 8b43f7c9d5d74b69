"""in.h5 and out.h5, the files that cross the seam between the main and the Lava environment.

NumPy and h5py only (plus `ash_neuro.errors`, `ash_neuro.atomic` and
`hardware.quantisation_report`, all standard library), so both sides import it: `runner.py`
writes in.h5 and reads out.h5, `simulate.py` the reverse.

in.h5   `input`  float32 (samples, T, *input_shape): the current (or spikes) of every step
        (`--quantise-on` calibration files have the same format)
out.h5  `output` float32 (samples, T, *output_shape): output spikes, aligned with the input
        (Lava's pipeline latency, one step per synaptic hop, is removed); when a readout (LI,
        CubaLI, I) feeds the Output, its membrane voltage after each step, in NIR's units
        (attribute `output_quantity`: "spikes" or "voltage")
        `activity/<node>` float32 (samples, *layer_shape): spikes per neuron per sample, over
        the sample's T steps, for every spiking node; attributes `node` (its graph name; the
        dataset name has '/' as '.'), `kind` and `latency_steps` (the lag removed)
        `spikes/<node>` uint8 (samples, T, *layer_shape), when recorded: every neuron node's
        spike trains, aligned like `output`; attributes `node`, `latency_steps`
        attributes: `samples`, `time_steps`, and what the run adds (simulate.py: mode, dt,
        scheme, backend, output_quantity, steps_run, build_s, run_s, ms_per_step, lava_nc,
        written; in fixed_pt quantise_as), and in fixed_pt
        `quantisation`: the `QuantisationReport` (hardware/quantisation_report.py) as JSON
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ash_neuro.atomic import replace_atomically
from ash_neuro.errors import AshError
from hardware.quantisation_report import QuantisationReport, QuantisationReportError

INPUT = "input"
QUANTISATION = "quantisation"  # the out.h5 attribute of the fixed_pt quantisation report


class HarnessFileError(AshError):
    """An in.h5 or out.h5 that cannot be read or written; one line naming the file."""


@dataclass(frozen=True)
class LavaResult:
    """What one Lava run returns, as out.h5 holds it.

    output     (samples, T, *output_shape) spikes (a readout's voltage: attrs
               ["output_quantity"]), aligned with the inputs (latency removed)
    activity   {node: (samples, *layer_shape)} spikes per neuron over each sample's T steps,
               for every spiking node
    latency    {node: steps} the pipeline latency the harness removed from that node
    spikes     {node: (samples, T, *layer_shape)} every node's spike trains (if recorded)
    attrs      out.h5's attributes: mode, dt, steps_run, build_s, run_s, ms_per_step, ...
    kinds      {node: NIR type name} of every node in `activity`
    quantisation  fixed_pt: every parameter's rounding and every node's current overflow
    """

    output: np.ndarray
    activity: dict[str, np.ndarray]
    latency: dict[str, int]
    spikes: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    quantisation: QuantisationReport | None = None


def write_inputs(path: Path, inputs: np.ndarray) -> Path:
    """An in.h5 of `inputs` (samples, T, *input_shape) as float32 dataset `input`."""
    with h5py.File(path, "w") as f:
        f.create_dataset(INPUT, data=np.asarray(inputs, dtype=np.float32))
    return path


def read_inputs(path: Path, input_shape: tuple[int, ...]) -> np.ndarray:
    """`input` of in.h5 as float64 (samples, T, *input_shape), checked: one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise HarnessFileError(f"input file {path} does not exist")
    try:
        with h5py.File(path, "r") as f:
            if INPUT not in f:
                raise HarnessFileError(f"{path} has no dataset '{INPUT}'")
            inputs = np.asarray(f[INPUT][()], dtype=np.float64)
    except (OSError, TypeError, ValueError) as exc:
        raise HarnessFileError(f"cannot read {path} ({' '.join(str(exc).split())})") from None
    expected = ("samples", "T", *input_shape)
    if inputs.ndim != len(expected) or inputs.shape[2:] != tuple(input_shape):
        raise HarnessFileError(
            f"{path}: input has shape {inputs.shape}, expected ({', '.join(map(str, expected))})"
        )
    if inputs.shape[0] < 1 or inputs.shape[1] < 1:
        raise HarnessFileError(f"{path}: input has no samples or no time steps ({inputs.shape})")
    if not np.all(np.isfinite(inputs)):
        raise HarnessFileError(f"{path}: input contains NaN or infinite values")
    return inputs


def write_outputs(path: Path, result: LavaResult) -> None:
    """out.h5 of `result`, written beside `path` and moved into place only when complete."""
    try:
        with replace_atomically(path) as temporary, h5py.File(temporary, "w") as f:
            f.create_dataset("output", data=result.output.astype(np.float32), compression="gzip")
            activity = f.create_group("activity")
            for node, counts in result.activity.items():
                dataset = activity.create_dataset(
                    _dataset_name(node), data=counts.astype(np.float32)
                )
                dataset.attrs.update(
                    node=node, kind=result.kinds.get(node, ""), latency_steps=result.latency[node]
                )
            if result.spikes:
                trains = f.create_group("spikes")
                for node, spikes in result.spikes.items():
                    dataset = trains.create_dataset(
                        _dataset_name(node), data=spikes.astype(np.uint8), compression="gzip"
                    )
                    dataset.attrs.update(node=node, latency_steps=result.latency[node])
            samples, steps = result.output.shape[:2]
            f.attrs.update(samples=samples, time_steps=steps)
            f.attrs.update(result.attrs)
            if result.quantisation is not None:
                f.attrs[QUANTISATION] = result.quantisation.to_json()
    except OSError as exc:
        raise HarnessFileError(f"cannot write {path} ({exc})") from None


def read_outputs(path: Path) -> LavaResult:
    """A `LavaResult` of an out.h5 written by `write_outputs`; spike trains as float32."""
    try:
        with h5py.File(path, "r") as f:
            activity, latency, kinds, spikes = {}, {}, {}, {}
            for dataset in f["activity"].values():
                node = dataset.attrs["node"]
                activity[node] = dataset[()]
                latency[node] = int(dataset.attrs["latency_steps"])
                kinds[node] = str(dataset.attrs.get("kind", ""))
            for dataset in f["spikes"].values() if "spikes" in f else ():
                spikes[dataset.attrs["node"]] = dataset[()].astype(np.float32)
            attrs = {k: v.item() if isinstance(v, np.generic) else v for k, v in f.attrs.items()}
            report = attrs.pop(QUANTISATION, None)
            quantisation = None if report is None else QuantisationReport.from_json(report)
            return LavaResult(
                f["output"][()], activity, latency, spikes, attrs, kinds, quantisation
            )
    except (OSError, KeyError, QuantisationReportError) as exc:
        raise HarnessFileError(f"cannot read {path} ({' '.join(str(exc).split())})") from None


def _dataset_name(node: str) -> str:
    return node.replace("/", ".")
