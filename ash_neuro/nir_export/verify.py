"""The three readings of an exported network, and how far they agree.

- `run_network`: the Norse network itself, step by step;
- `run_from_nir`: the graph rebuilt by Norse's own importer (`norse.torch.from_nir`);
- `run_reference`: the graph integrated by the NumPy reference (`reference.py`), which reads
  only NIR's documented equations, so the graph is checked against what NIR *means*, not only
  against Norse's reading of it.

All take and return time-first tensors (T, rows, ...), as the encoder runs.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import nir
import numpy as np
import torch
from norse.torch import LIFBoxCell, from_nir

from ash_neuro.nir_export import reference
from ash_neuro.nir_export.contract import ExportVerificationError

Spikes = dict[str, np.ndarray]  # LIF layer name -> spikes (T, rows, neurons); "output" too
# The independent NumPy reading of the graph differs from Norse only in float32 rounding (an
# expression such as dt/tau vs dt*tau_mem_inv may differ in the last bit), which can flip a
# spike whose membrane lands within ~1e-7 of threshold; a semantic error (a wrong tau, r or
# threshold) disagrees on far more than this.
REFERENCE_MIN_AGREEMENT = 0.999


def run_network(network: torch.nn.Module, currents: torch.Tensor) -> torch.Tensor:
    """Run a Norse stateful network step by step: (T, rows, in) -> (T, rows, out)."""
    state = None
    outputs = []
    with torch.no_grad():
        for step in currents:
            out, state = network(step, state)
            outputs.append(out)
    return torch.stack(outputs)


def record_spikes(
    root: torch.nn.Module,
    run: Callable[[], torch.Tensor],
    kinds: tuple[type[torch.nn.Module], ...] = (LIFBoxCell,),
) -> Spikes:
    """Call `run()` and collect, per step, the output of every module of `kinds` directly in
    `root` (a Norse cell's first output, its spikes or a leaky integrator's voltage; a module
    returning one tensor, such as snnTorch's neurons with `init_hidden`, that tensor)."""
    steps: dict[str, list[torch.Tensor]] = {}
    handles = []
    for name, module in root.named_children():
        if isinstance(module, kinds):

            def hook(_module, _inputs, output, name=name):
                value = output[0] if isinstance(output, tuple) else output
                steps.setdefault(name, []).append(value.detach().clone())

            handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            output = run()
    finally:
        for handle in handles:
            handle.remove()
    spikes = {name: torch.stack(z).cpu().numpy() for name, z in steps.items()}
    spikes["output"] = output.detach().cpu().numpy()
    return spikes


def run_from_nir(graph: nir.NIRGraph, currents: torch.Tensor, dt: float) -> Spikes:
    """Rebuild `graph` with Norse's importer and run it on `currents` (T, rows, in_dim).

    norse 1.1.0's `from_nir` reads tau_mem_inv = 1 / tau but ignores `r` (it only warns) and
    `v_reset` (norse/torch/utils/import_nir.py); the encoder's r = 1 and v_reset = 0 make that
    harmless, and `run_reference` reads both, so a graph where they mattered is still checked.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nirtorch.load's deprecation notice
        module = from_nir(graph, dt=dt)
    module.eval()
    return record_spikes(module, lambda: run_network(module, currents.cpu()))


def run_reference(graph: nir.NIRGraph, currents: np.ndarray, dt: float) -> Spikes:
    """The NumPy reference on `currents` (T, rows, in_dim), in float32 like Norse, every row
    from rest (v = v_leak): spikes of every neuron node and the Output, (T, rows, ...)."""
    rows_first = np.moveaxis(np.asarray(currents, dtype=np.float32), 0, 1)
    spikes = reference.simulate(graph, rows_first, dt, dtype=np.float32)
    return {name: np.moveaxis(trains, 1, 0) for name, trains in spikes.items()}


def spike_agreement(a: Spikes, b: Spikes) -> dict[str, float]:
    """Fraction of equal entries per layer in both, and over all of them ("all")."""
    names = [name for name in a if name in b]
    if set(names) != set(a) or set(names) != set(b):
        raise ExportVerificationError(
            f"the rebuilt network has spiking layers {sorted(b)}, the original {sorted(a)}"
        )
    result, equal, total = {}, 0, 0
    for name in names:
        if a[name].shape != b[name].shape:
            raise ExportVerificationError(
                f"layer {name}: spike trains of shape {b[name].shape}, expected {a[name].shape}"
            )
        same = int(np.count_nonzero(a[name] == b[name]))
        result[name] = same / a[name].size
        if name != "output":
            equal, total = equal + same, total + a[name].size
    result["all"] = equal / total if total else result["output"]
    return result
