"""Fixtures of the Lava-side tests: the Lava interpreter, small NIR graphs, their inputs.

The tests run in the main environment and reach Lava only through subprocesses of
`.venv-lava/bin/python` (or $ASH_LAVA_PYTHON); without that environment they are skipped.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import nir
import numpy as np
import pytest
from lava_helpers import SIMULATE, chain, lif

from tests.conftest import require_lava

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def lava() -> Path:
    """The Lava interpreter (`tests.conftest.require_lava`)."""
    return require_lava()


@pytest.fixture
def run_simulate(lava, tmp_path):
    """Run simulate.py; returns (CompletedProcess, marker) — the marker tags its processes."""

    def run(graph: Path, inputs: Path, *args: str, timeout: float = 120):
        marker = uuid.uuid4().hex
        env = dict(os.environ, ASH_TEST_MARKER=marker)
        command = [str(lava), str(SIMULATE), str(graph), "--input", str(inputs)]
        command += ["--out", str(tmp_path / "out.h5"), *args]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
        return done, marker

    return run


@pytest.fixture
def lif_graph(tmp_path) -> tuple[Path, nir.NIRGraph]:
    """Input(6) -> Affine -> LIF(10) -> Affine -> LIF(4) -> Output, seeded weights.

    Parameters as the exporter writes them: tau 10 ms, r 1, v_leak 0, v_reset 0, threshold 1.
    """
    rng = np.random.default_rng(0)
    graph = chain(
        [6],
        ("fc1", nir.Affine(rng.normal(0.2, 0.6, (10, 6)), rng.normal(0, 0.2, 10))),
        ("lif1", lif(10)),
        ("fc2", nir.Affine(rng.normal(1.0, 3.0, (4, 10)), np.zeros(4))),
        ("lif2", lif(4)),
        output_shape=[4],
    )
    path = tmp_path / "lif.nir"
    nir.write(path, graph)
    return path, graph


@pytest.fixture
def currents() -> np.ndarray:
    """(samples, T, 6) input currents."""
    return np.random.default_rng(1).uniform(0, 3, (6, 30, 6))


@pytest.fixture(scope="session")
def lava_dl(lava) -> Path:
    """The Lava interpreter, with lava-dl's netx importable in it: skipped without lava-dl on a
    developer's machine, failing where `CI` is set (as `tests.conftest.require_lava`)."""
    done = subprocess.run(
        [str(lava), "-c", "import lava.lib.dl.netx"], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        reason = f"lava-dl is not importable in {lava} (`make lava-env` installs it)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: in CI it must be")
        pytest.skip(reason)
    return lava
