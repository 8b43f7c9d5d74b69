"""Run a NIR graph on Lava from the main environment, through `hardware/simulate.py`.

Lava needs Python 3.10 and lives in its own environment (`.venv-lava`, `make lava-env`), so
this module imports neither Lava nor the rest of `hardware` except `io.py` (NumPy and h5py):
it writes the inputs to a temporary in.h5 (`io.write_inputs`), runs `simulate.py` with the
Lava interpreter and reads out.h5 back (`io.read_outputs`). The interpreter is
`$ASH_LAVA_PYTHON`, else `.venv-lava/bin/python` at the repository root.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ash_neuro.errors import AshError
from hardware.io import LavaResult, read_outputs, write_inputs

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


def run_on_lava(
    nir_path: str | Path,
    inputs: np.ndarray,
    mode: str = "floating_pt",
    dt: float | None = None,
    timeout: float = 3600.0,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run `inputs` (samples, T, *input_shape) through the graph at `nir_path` on Lava.

    Returns the output spikes (samples, T, *output_shape), aligned with the inputs (Lava's
    pipeline latency removed; a readout's voltage when a LI, CubaLI or I feeds the Output),
    and the spike counts per spiking neuron node, each (samples, *layer_shape), summed over the
    T steps of a sample. `dt` None: the graph's sidecar or
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
    scheme: str = "explicit",
    quantise_as: str = "loihi",
) -> LavaResult:
    """`run_on_lava` returning everything out.h5 holds: with `record_spikes`, every neuron
    node's spike trains too, the run's timings and in fixed_pt its `QuantisationReport`
    (`LavaResult.quantisation`). `quantise_on`: an in.h5 of calibration inputs for fixed_pt
    (`write_inputs`), else the run's own inputs. `scheme` and `quantise_as`: simulate.py's
    --scheme (explicit or semi-implicit) and --quantise-as (loihi or netx)."""
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
            "--mode", mode, "--timeout", str(timeout), "--scheme", scheme,
        ]  # fmt: skip
        if dt is not None:
            command += ["--dt", repr(float(dt))]
        if record_spikes:
            command.append("--record-spikes")
        if quantise_on is not None:
            command += ["--quantise-on", str(quantise_on)]
        if mode == "fixed_pt":
            command += ["--quantise-as", quantise_as]
        limit = timeout + GRACE_S
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=limit)
        except subprocess.TimeoutExpired:
            raise LavaError(f"the Lava run did not end within {limit:g} s") from None
        if done.returncode != 0:
            raise LavaError(_error_line(done.stderr, done.returncode))
        return read_outputs(out_path)


def _error_line(stderr: str, status: int) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    if errors:
        return errors[-1]
    tail = lines[-1] if lines else "no message"
    return f"hardware/simulate.py exited with status {status}: {tail}"
