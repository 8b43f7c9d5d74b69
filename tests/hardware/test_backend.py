"""--backend loihi2: what keeps a graph off the chip (checked before the chip is needed), the
one-line error where Intel's Loihi extension of Lava is missing, and the run configuration it
would use."""

from __future__ import annotations

import subprocess

import nir
import numpy as np
import pytest
from lava_helpers import chain, lif, processes_with_marker

from hardware.io import write_inputs
from tests.conftest import ROOT


def lif_chain(**first) -> nir.NIRGraph:
    """The exporter's structure: Affine -> LIF -> Affine -> LIF, v_leak = v_reset = 0."""
    return chain(
        [6],
        ("fc1", nir.Affine(np.ones((5, 6)), np.zeros(5))),
        ("lif1", lif(5, **first)),
        ("fc2", nir.Affine(np.ones((3, 5)), np.zeros(3))),
        ("lif2", lif(3)),
        output_shape=[3],
    )


def recurrent_chain() -> nir.NIRGraph:
    graph = lif_chain()
    graph.nodes["rec"] = nir.Linear(-np.eye(5))
    graph.edges += [("lif1", "rec"), ("rec", "lif1")]
    return graph


def readout() -> nir.NIRGraph:
    li = nir.LI(np.full(2, 0.01), np.ones(2), np.zeros(2))
    return chain(
        [6], ("fc", nir.Affine(np.ones((2, 6)), np.zeros(2))), ("li", li), output_shape=[2]
    )


MISSING = "error: --backend loihi2 needs Intel's Lava extension for Loihi (lava-loihi"
CANNOT = "error: --backend loihi2 cannot run this graph: "


@pytest.mark.parametrize(
    ("graph", "mode", "message"),
    [
        (lif_chain(), "fixed_pt", MISSING),
        (lif_chain(), "floating_pt", CANNOT + "the chip runs integers: use --mode fixed_pt"),
        (
            lif_chain(v_leak=0.5),
            "fixed_pt",
            CANNOT + "node 'lif1' (LIF) starts each sample at rest v_leak != v_reset",
        ),
        (
            lif_chain(tau=[0.01, 0.02, 0.01, 0.01, 0.01]),
            "fixed_pt",
            CANNOT + "node 'lif1' (LIF) has per-neuron decays",
        ),
        (readout(), "fixed_pt", CANNOT + "node 'li' (LI) is a readout"),
        (
            recurrent_chain(),
            "fixed_pt",
            CANNOT + "node 'lif1' (LIF) needs its input cleared at each sample's start",
        ),
    ],  # fmt: skip
    ids=["default structure", "floating_pt", "rest", "per-neuron decays", "readout", "recurrent"],
)
def test_loihi2_is_a_one_line_error_here(graph, mode, message, run_simulate, tmp_path):
    """The exporter's structure is fit for the chip and only the extension is missing; what
    runs only on the simulator is named first."""
    path = tmp_path / "graph.nir"
    nir.write(path, graph)
    inputs = write_inputs(tmp_path / "in.h5", np.ones((1, 4, 6)))
    done, marker = run_simulate(path, inputs, "--mode", mode, "--backend", "loihi2")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(message), done.stderr
    if message == MISSING:
        assert "lava.utils.loihi2_profiler" in done.stderr and "use --backend sim" in done.stderr
    assert not processes_with_marker(marker)


def test_loihi2_runs_lavas_own_lif_on_the_chip_and_our_io_on_the_host(lava):
    root = str(ROOT)
    code = (
        f"import sys; sys.path.insert(0, {root!r}); from hardware.lava_network import run_config; "
        "chip, sim = run_config('fixed_pt', 'loihi2'), run_config('fixed_pt'); "
        "print(type(chip).__name__, sorted(p.__name__ for p in chip.exception_proc_model_map), "
        "type(sim).__name__, sorted(p.__name__ for p in sim.exception_proc_model_map))"
    )
    done = subprocess.run([str(lava), "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == (
        "Loihi2HwCfg ['Extractor', 'Injector'] Loihi2SimCfg ['Extractor', 'Injector', "
        "'LIFReset', 'LIFResetPerNeuron', 'VoltageReadout']"
    )
