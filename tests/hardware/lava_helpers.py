"""Helpers of the Lava-side tests: graph builders, process and memory checks."""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np

from hardware.quantisation_report import (
    CurrentOverflow,
    InputCurrent,
    InputQuantisation,
    LayerQuantisation,
    QuantisationReport,
    WeightQuantisation,
)

ROOT = Path(__file__).resolve().parents[2]
SIMULATE = ROOT / "hardware" / "simulate.py"
DT = 1e-3


def processes_with_marker(marker: str) -> list[int]:
    """Live processes whose environment carries `marker` (all of a run's descendants do)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"ASH_TEST_MARKER={marker}".encode() in environ.read_bytes():
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


def lif(n, tau=0.01, **kw) -> nir.LIF:
    params = dict(r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n))
    params.update({k: np.broadcast_to(np.asarray(v, float), (n,)).copy() for k, v in kw.items()})
    return nir.LIF(tau=np.full(n, tau), **params)


def chain(input_shape, *nodes: tuple[str, nir.NIRNode], output_shape) -> nir.NIRGraph:
    """input -> nodes... -> output, by name."""
    names = ["input"] + [name for name, _ in nodes] + ["output"]
    graph_nodes = {"input": nir.Input(input_type={"input": np.array(input_shape)})}
    graph_nodes.update(dict(nodes))
    graph_nodes["output"] = nir.Output(output_type={"output": np.array(output_shape)})
    edges = list(zip(names[:-1], names[1:]))
    return nir.NIRGraph(nodes=graph_nodes, edges=edges, type_check=False)


def quantisation_report(overflow: dict[str, tuple[float, int, int]] | None = None):
    """A fixed_pt report of a two-layer chain ('1' fed by the input, '3' by '1', as the
    exporter names them), calibrated on 102 samples; `overflow` {layer: (peak_share, wrapped,
    neuron_steps)}. The lines it words are written out by hand in test_quantisation_report.py.
    """
    decays = dict(dv=410, dv_float=0.1, dv_loihi=410 / 4096, du=4095, du_float=1.0, du_loihi=1.0)
    lowered = InputCurrent(
        peak=94208.0, share=94208 / 2**17, threshold_shift=1, unshifted_peak_thresholds=11.5
    )
    first = LayerQuantisation(
        "1",
        "LIF",
        (WeightQuantisation("input", 0, "mixed", 0.0046),),
        vth=8192,
        **decays,
        max_bias_error=4.6e-7,
        input_current=lowered,
    )
    second = LayerQuantisation(
        "3",
        "LIF",
        (WeightQuantisation("1", -3, "excitatory", 0.0063),),
        vth=8192,
        **decays,
        max_bias_error=0.0,
    )
    figures = {layer: CurrentOverflow(*v) for layer, v in (overflow or {}).items()}
    graph_input = InputQuantisation(scale=4.339757, binary=False, bits=8, max_error_share=0.0039)
    return QuantisationReport(graph_input, (first, second), 102, figures)
