"""Run a NIR graph on Lava from the main environment, through `hardware/simulate.py`.

Lava needs Python 3.10 and lives in its own environment (`.venv-lava`, `make lava-env`), so
this module imports neither Lava nor the rest of `hardware`: it writes the inputs to a
temporary in.h5, runs `simulate.py` with the Lava interpreter and reads out.h5 back. The
interpreter is `$ASH_LAVA_PYTHON`, else `.venv-lava/bin/python` at the repository root.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ash_neuro.errors import AshError

ROOT = Path(__file__).resolve().parents[1]
SIMULATE = ROOT / "hardware" / "simulate.py"
LAVA_PYTHON_VAR = "ASH_LAVA_PYTHON"
MODES = ("floating_pt", "fixed_pt")
# simulate.py kills a run at --timeout itself; this much longer is left for its start-up and
# clean-up before the caller gives up on it too.
GRACE_S = 60.0


class LavaError(AshError):
    """The Lava environment is missing, or a Lava run failed; one line saying why."""


def lava_python() -> Path:
    """The Lava environment's interpreter, or LavaError saying how to make it."""
    configured = os.environ.get(LAVA_PYTHON_VAR)
    path = Path(configured) if configured else ROOT / ".venv-lava" / "bin" / "python"
    if not (path.is_file() and os.access(path, os.X_OK)):
        source = f"${LAVA_PYTHON_VAR}" if configured else "the Lava environment"
        raise LavaError(f"{source} has no Python at {path}; run `make lava-env`")
    return path


@dataclass(frozen=True)
class LavaResult:
    """What one Lava run returns, read from out.h5 (see hardware/README.md).

    output     (samples, T, *output_shape) spikes, aligned with the inputs (latency removed)
    activity   {node: (samples, *layer_shape)} spikes per neuron over each sample's T steps
    latency    {node: steps} the pipeline latency the harness removed from that node
    spikes     {node: (samples, T, *layer_shape)} every node's spike trains (if recorded)
    attrs      out.h5's attributes: mode, dt, steps_run, build_s, run_s, ms_per_step, ...
    """

    output: np.ndarray
    activity: dict[str, np.ndarray]
    latency: dict[str, int]
    spikes: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)


def run_on_lava(
    nir_path: str | Path,
    inputs: np.ndarray,
    mode: str = "floating_pt",
    dt: float | None = None,
    timeout: float = 3600.0,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run `inputs` (samples, T, *input_shape) through the graph at `nir_path` on Lava.

    Returns the output spikes (samples, T, *output_shape), aligned with the inputs (Lava's
    pipeline latency removed), and the spike counts per neuron node, each (samples,
    *layer_shape), summed over the T steps of a sample. `dt` None: the graph's sidecar or
    metadata, else 1e-3 s. Raises LavaError with simulate.py's one-line error.
    """
    result = simulate_on_lava(nir_path, inputs, mode, dt, timeout)
    return result.output, result.activity


def simulate_on_lava(
    nir_path: str | Path,
    inputs: np.ndarray,
    mode: str = "floating_pt",
    dt: float | None = None,
    timeout: float = 3600.0,
    record_spikes: bool = False,
    quantise_on: str | Path | None = None,
) -> LavaResult:
    """`run_on_lava` returning everything out.h5 holds: with `record_spikes`, every neuron
    node's spike trains too, and the run's timings and quantisation report. `quantise_on`: an
    in.h5 of calibration inputs for fixed_pt (`write_inputs`), else the run's own inputs."""
    if mode not in MODES:
        raise LavaError(f"unknown mode {mode!r}; use {' or '.join(MODES)}")
    inputs = np.asarray(inputs, dtype=np.float32)
    if inputs.ndim < 3:
        raise LavaError(f"inputs must be (samples, T, *input_shape), got shape {inputs.shape}")
    python = lava_python()
    with tempfile.TemporaryDirectory(prefix="ash-lava-") as tmp:
        in_path, out_path = write_inputs(Path(tmp) / "in.h5", inputs), Path(tmp) / "out.h5"
        command = [
            str(python), str(SIMULATE), str(nir_path),
            "--input", str(in_path), "--out", str(out_path),
            "--mode", mode, "--timeout", str(timeout),
        ]  # fmt: skip
        if dt is not None:
            command += ["--dt", repr(float(dt))]
        if record_spikes:
            command.append("--record-spikes")
        if quantise_on is not None:
            command += ["--quantise-on", str(quantise_on)]
        limit = timeout + GRACE_S
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=limit)
        except subprocess.TimeoutExpired:
            raise LavaError(f"the Lava run did not end within {limit:g} s") from None
        if done.returncode != 0:
            raise LavaError(_error_line(done.stderr, done.returncode))
        return _read_out(out_path)


def overflow_lines(stats: dict[str, dict[str, float]]) -> list[str]:
    """`current_overflow`'s figures (of one run, or summed over runs), one line per layer."""
    lines = []
    for name, layer in stats.items():
        share = f"{layer['peak_share']:.1%} of Loihi's 24-bit range"
        if layer["wrapped"]:
            lines.append(
                f"quantise: warning: node '{name}': {layer['wrapped']:.0f} of "
                f"{layer['neuron_steps']:.0f} neuron-steps exceeded the 24-bit current and "
                f"wrapped (peak {share})"
            )
        else:
            lines.append(f"quantise: node '{name}': no current overflow in this run (peak {share})")
    return lines


def write_inputs(path: Path, inputs: np.ndarray) -> Path:
    """An in.h5 of `inputs` (samples, T, *input_shape) as float32 dataset `input`."""
    with h5py.File(path, "w") as f:
        f.create_dataset("input", data=np.asarray(inputs, dtype=np.float32))
    return path


def _read_out(path: Path) -> LavaResult:
    with h5py.File(path, "r") as f:
        activity = {d.attrs["node"]: d[()] for d in f["activity"].values()}
        latency = {d.attrs["node"]: int(d.attrs["latency_steps"]) for d in f["activity"].values()}
        spikes = {}
        if "spikes" in f:
            spikes = {d.attrs["node"]: d[()].astype(np.float32) for d in f["spikes"].values()}
        attrs = {k: v.item() if isinstance(v, np.generic) else v for k, v in f.attrs.items()}
        return LavaResult(f["output"][()], activity, latency, spikes, attrs)


def _error_line(stderr: str, status: int) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    if errors:
        return errors[-1]
    tail = lines[-1] if lines else "no message"
    return f"hardware/simulate.py exited with status {status}: {tail}"
