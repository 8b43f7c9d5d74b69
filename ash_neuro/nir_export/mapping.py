"""Norse -> NIR: the parameter mapping and the graph of a Norse network of Linear and LIFBoxCell.

Upstream gaps worked around here (norse 1.1.0, nir 1.0.8, nirtorch 2.6), each at the line that
fills it: the LIF time constant carries a spurious factor of dt (norse#411), `v_reset` is not
exported, neuron parameters are 0-d and so leave the LIF nodes with empty `input_type` /
`output_type` and make `nir.write` fail, weights are torch tensors, and the Input/Output shapes
include the batch dimension of the sample.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import nir
import numpy as np
import torch
from norse.torch import LIFBoxCell, to_nir
from norse.torch.functional.reset import reset_value

from ash_neuro.nir_export.contract import NIRExportError

# --- the parameter mapping -------------------------------------------------------------------


def lif_box_to_nir(cell: LIFBoxCell, size: int, name: str = "") -> nir.LIF:
    """Map a Norse `LIFBoxCell` of `size` neurons to a NIR `LIF` node (the one place they meet).

    Norse's LIFBox step of length dt (norse/torch/functional/lif_box.py) is
        v <- v + dt * tau_mem_inv * ((v_leak - v) + i)
        z  = 1 if v > v_th else 0          (heaviside: strictly greater)
        v <- v_reset if z else v            (reset_value)
    NIR's LIF (nir/ir/neuron.py) is the ODE tau * dv/dt = (v_leak - v) + r * I with
    z = 1 if v > v_threshold and then v = v_reset; integrated by forward Euler with the same dt:
        v <- v + (dt / tau) * ((v_leak - v) + r * I)
    Equal for every v and I exactly when
        dt / tau = dt * tau_mem_inv   =>  tau = 1 / tau_mem_inv   (seconds; dt cancels)
        (dt / tau) * r = dt * tau_mem_inv  =>  r = 1
        v_threshold = v_th, v_leak = v_leak, v_reset = v_reset,
    with the same strict comparison and reset-to-value order. The default cell
    (tau_mem_inv = 100 /s) is tau = 0.01 s. Norse 1.1.0's `to_nir` writes tau = dt / tau_mem_inv
    (1e-5 s at dt = 1e-3 s): a dimensional slip, not a unit convention (norse#411, fixed on
    norse's main by norse#413 after 1.1.0, which then writes 1 / tau_mem_inv); a consumer
    integrating NIR's equation would take steps of dt / tau = 100 and diverge.

    NIR types a neuron node by the shape of its parameters, so each parameter is broadcast to
    `(size,)`; Norse's scalar (0-d) parameters leave `input_type` empty and make `nir.write`
    fail on compressing 0-d datasets (NIR expects neuron-shaped arrays: neuromorphs/NIR#12,
    #107, #162; jeshraghian/snntorch#334).
    """
    p = cell.p
    label = f"layer {name} (LIFBoxCell)" if name else "LIFBoxCell"
    if p.reset_method is not reset_value:
        method = getattr(p.reset_method, "__name__", repr(p.reset_method))
        raise NIRExportError(
            f"{label} resets with {method}; NIR's LIF resets to v_reset, so only "
            "reset_value can be exported"
        )

    def neurons(value: Any, what: str) -> np.ndarray:
        array = np.asarray(torch.as_tensor(value).detach().cpu(), dtype=np.float32)
        try:
            return np.broadcast_to(array, (size,)).copy()
        except ValueError:
            raise NIRExportError(
                f"{label}: {what} has shape {tuple(array.shape)}, which does not broadcast to "
                f"its {size} neurons"
            ) from None

    tau_mem_inv = neurons(p.tau_mem_inv, "tau_mem_inv")
    if np.any(tau_mem_inv <= 0) or not np.all(np.isfinite(tau_mem_inv)):
        raise NIRExportError(f"{label}: tau_mem_inv must be positive and finite")
    return nir.LIF(
        tau=np.float32(1.0) / tau_mem_inv,
        r=np.ones(size, dtype=np.float32),
        v_leak=neurons(p.v_leak, "v_leak"),
        v_threshold=neurons(p.v_th, "v_th"),
        v_reset=neurons(p.v_reset, "v_reset"),
    )


# --- graph construction ----------------------------------------------------------------------


def check_exportable(network: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """The network's layers in order; a layer NIR (through this exporter) cannot express is a
    one-line error naming it and its type."""
    layers = list(network.named_children())
    if not layers:
        raise NIRExportError("the spiking network has no layers to export")
    for name, layer in layers:
        if not isinstance(layer, torch.nn.Linear | LIFBoxCell):
            kind = f"{type(layer).__module__}.{type(layer).__qualname__}"
            raise NIRExportError(
                f"layer {name} ({kind}) cannot be exported to NIR; the semantic abstract "
                "encoder may contain only torch.nn.Linear and norse LIFBoxCell layers"
            )
    if not isinstance(layers[-1][1], LIFBoxCell):
        raise NIRExportError(
            f"the last layer {layers[-1][0]} ({type(layers[-1][1]).__name__}) is not a "
            "LIFBoxCell; the encoder's output must be spikes"
        )
    if not isinstance(layers[0][1], torch.nn.Linear):
        raise NIRExportError(
            f"the first layer {layers[0][0]} ({type(layers[0][1]).__name__}) is not a "
            "torch.nn.Linear; the encoder's input width must be known"
        )
    return layers


def network_to_nir(
    network: torch.nn.Module, metadata: Mapping[str, Any] | None = None
) -> nir.NIRGraph:
    """A type-checked NIR graph of `network` (Linear -> Affine, LIFBoxCell -> LIF)."""
    layers = check_exportable(network)
    in_dim = layers[0][1].in_features
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit / nirtorch deprecation notices
        # norse 1.1.0's `dt` argument only scales the time constants (norse#413 renamed it
        # `time_scaling_factor`, default 1); 1.0 makes its LIF tau = 1 / tau_mem_inv.
        upstream = to_nir(network, torch.zeros(1, in_dim), dt=1.0)
    nodes: dict[str, nir.NIRNode] = {}
    size = in_dim
    for name, layer in layers:
        node = upstream.nodes.get(name)
        if isinstance(layer, torch.nn.Linear):
            if not isinstance(node, nir.Affine):
                raise _upstream_changed(name, node)
            # norse 1.1.0 hands over torch tensors; NIR's nodes hold NumPy arrays (norse#435).
            nodes[name] = nir.Affine(
                weight=np.asarray(node.weight, dtype=np.float32),
                bias=np.asarray(node.bias, dtype=np.float32),
            )
            size = layer.out_features
        else:
            if not isinstance(node, nir.LIF):
                raise _upstream_changed(name, node)
            nodes[name] = lif_box_to_nir(layer, size, name)
            # Norse's own mapping must agree with ours wherever it is defined; it lacks v_reset
            # and the neuron shape, which `lif_box_to_nir` adds.
            for key in ("tau", "r", "v_leak", "v_threshold"):
                theirs = np.asarray(getattr(node, key), dtype=np.float32)
                if not np.allclose(np.broadcast_to(theirs, (size,)), getattr(nodes[name], key)):
                    raise _upstream_changed(name, node, key)
    # norse 1.1.0's to_nir keeps the sample's batch dimension in the Input/Output shapes (it
    # does not pass nirtorch's `ignore_dims`); a graph's types are per-sample.
    nodes["input"] = nir.Input(input_type={"input": np.array([in_dim])})
    nodes["output"] = nir.Output(output_type={"output": np.array([size])})
    chain = ["input", *(name for name, _ in layers), "output"]
    edges = list(zip(chain[:-1], chain[1:]))
    if sorted(edges) != sorted(tuple(e) for e in upstream.edges):
        raise NIRExportError(
            f"norse.to_nir traced edges {sorted(upstream.edges)}, not the chain {edges}; "
            "review ash_neuro/nir_export/mapping.py against the installed norse"
        )
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(metadata or {}))
    except ValueError as exc:  # NIR's type check
        raise NIRExportError(f"the NIR graph does not type-check: {exc}") from None


def without_first_affine(graph: nir.NIRGraph) -> nir.NIRGraph:
    """The graph with its first Affine left to the host (the contract's `first_layer`
    "host"): the Input, now as wide as that Affine's output, feeds the first LIF directly,
    one input per neuron (NIR's Input -> LIF edge: the identity)."""
    order = chain_order(graph)
    input_name, first, lif = order[0], order[1], order[2]
    if not isinstance(graph.nodes[first], nir.Affine) or not isinstance(graph.nodes[lif], nir.LIF):
        raise NIRExportError(
            f"the first layer can run on the host only when an Affine feeds a LIF first, not "
            f"{type(graph.nodes[first]).__name__} -> {type(graph.nodes[lif]).__name__}"
        )
    width = int(np.asarray(graph.nodes[first].weight).shape[0])
    nodes = {name: node for name, node in graph.nodes.items() if name != first}
    nodes[input_name] = nir.Input(input_type={"input": np.array([width])})
    edges = [(input_name, lif)] + [e for e in graph.edges if first not in e]
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(graph.metadata))
    except ValueError as exc:  # NIR's type check
        raise NIRExportError(f"the NIR graph does not type-check: {exc}") from None


def _upstream_changed(name: str, node: Any, key: str = "") -> NIRExportError:
    what = f"its {key}" if key else f"a {type(node).__name__}"
    return NIRExportError(
        f"norse.to_nir emitted {what} for layer {name}, unlike the mapping this exporter "
        "checks against; review ash_neuro/nir_export/mapping.py against the installed norse"
    )


def node_types(graph: nir.NIRGraph) -> list[str]:
    """Node types in execution order (the graph is a chain from Input to Output)."""
    return [type(graph.nodes[name]).__name__ for name in chain_order(graph)]


def chain_order(graph: nir.NIRGraph) -> list[str]:
    """Node names from the Input to the Output of a graph that is one chain (as exported)."""
    successors: dict[str, list[str]] = {}
    for src, dst in graph.edges:
        successors.setdefault(src, []).append(dst)
    inputs = [name for name, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        raise NIRExportError(f"expected one Input node, found {len(inputs)}")
    order = [inputs[0]]
    while successors.get(order[-1]):
        nxt = successors[order[-1]]
        if len(nxt) != 1 or nxt[0] in order:
            raise NIRExportError(f"node {order[-1]} does not lead to one next node: {nxt}")
        order.append(nxt[0])
    if len(order) != len(graph.nodes):
        raise NIRExportError("the graph is not a single chain from Input to Output")
    return order


def lif_widths(network: torch.nn.Module) -> tuple[int, ...]:
    """Neurons per LIFBoxCell layer of an exportable network, in order."""
    widths, size = [], None
    for _, layer in check_exportable(network):
        if isinstance(layer, torch.nn.Linear):
            size = layer.out_features
        else:
            widths.append(size)
    return tuple(widths)


def float32_notes(network: torch.nn.Module) -> list[str]:
    """Notes on LIF parameters whose NIR form differs from Norse's in the last float32 bit."""
    notes = []
    for name, layer in network.named_children():
        if isinstance(layer, LIFBoxCell):
            rate = np.asarray(torch.as_tensor(layer.p.tau_mem_inv).detach().cpu(), np.float32)
            if np.any(np.float32(1.0) / (np.float32(1.0) / rate) != rate):
                notes.append(
                    f"layer {name}: tau_mem_inv does not survive float32 inversion exactly "
                    "(tau = 1/tau_mem_inv); a consumer's decay may differ in the last bit"
                )
    return notes
