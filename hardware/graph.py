"""A NIR graph (HDF5) -> a `LavaPlan`: read, flatten, check every node's shape, lower.

Supported nodes: Input, Output, the linear maps Affine, Linear, Scale, Conv2d, SumPool2d and
AvgPool2d, Flatten, the spiking neurons LIF, CubaLIF and IF, the readouts LI, CubaLI and I
(NIR's Integrator; their voltage is the output), and nested `NIRGraph`s, flattened into one
graph whose nodes are named `subgraph.node`. Everything between two neuron populations is
linear, so chains of linear maps are multiplied into one connection matrix per (source
population, target population): one Lava Dense (or Sparse, for convolutions and pooling) hop
per source, whatever the chain (linear_maps.py: tensors flattened in C order, NIR's (C, H,
W) layout; convolutions and pooling as sparse matrices).

Recurrence (ash_neuro/nir_export/reference.py states the meaning): a cycle through exactly one
neuron node, back to itself through linear nodes (snnTorch's RLeaky and RSynaptic), is a
connection of the population onto itself; its Lava hop delivers the spikes of step t at step
t + 1, which is the reference's one-step delay on the cycle's edge out of the neuron.

Not supported, each a one-line error naming the node: cycles through several neuron nodes or
none, a recurrent connection into a layer whose input lags a step (CubaLIF or CubaLI under
`--scheme explicit`: the recurrent spikes would need two steps), paths of unequal Lava latency
into one population (a skip connection would need a delay), several Input or Output nodes, a
readout feeding anything but the Output, and any other node type.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import h5py
import nir
import numpy as np

from hardware.linear_maps import (
    LINEAR_TYPES,
    as_matrix,
    flatten_shape,
    identity,
    linear_map,
    scale_rows,
)
from hardware.mapping import NEURON_TYPES, map_neuron
from hardware.plan import (
    CONSTANT,
    Connection,
    HarnessError,
    LavaPlan,
    Matrix,
    NeuronLayer,
    matrix_values,
)

SUPPORTED = ("Input", "Output", "Flatten", "NIRGraph") + tuple(
    t.__name__ for t in LINEAR_TYPES + NEURON_TYPES
)


def read_graph(path: str | Path) -> nir.NIRGraph:
    """Load a NIR file, refusing unsupported node types by name before `nir` parses them."""
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"NIR graph {path} does not exist")
    try:
        with h5py.File(path, "r") as f:
            types = _node_types(f["node"])
    except (OSError, KeyError, TypeError) as exc:
        raise HarnessError(f"{path} is not a readable NIR graph ({_one_line(exc)})") from None
    for name, kind in types.items():
        if kind not in SUPPORTED:
            raise HarnessError(
                f"node '{name}' is a {kind}, which the Lava harness does not support "
                f"(supported: {', '.join(SUPPORTED)})"
            )
    try:
        return nir.read(path, type_check=False)
    except Exception as exc:  # nir raises bare Assertion/Key/ValueErrors on malformed nodes
        raise HarnessError(f"{path} is not a readable NIR graph ({_one_line(exc)})") from None


def _node_types(group: h5py.Group, prefix: str = "") -> dict[str, str]:
    """{node name: NIR type} of a graph group, subgraphs' nodes as `subgraph.node`."""
    types = {}
    for name, node in group["nodes"].items():
        types[prefix + name] = _text(node["type"][()])
        if types[prefix + name] == "NIRGraph":
            types.update(_node_types(node, f"{prefix}{name}."))
    return types


def flatten(graph: nir.NIRGraph) -> tuple[dict[str, nir.NIRNode], list[tuple[str, str]]]:
    """(nodes, edges) of `graph` with every nested NIRGraph replaced by its nodes, named
    `subgraph.node`; an edge to (from) a subgraph goes to what its Input feeds (comes from
    what feeds its Output), and edges may also name a subgraph's nodes as `subgraph.node`."""
    nodes: dict[str, nir.NIRNode] = {}
    edges: list[tuple[str, str]] = []
    ports: dict[str, tuple[str, str]] = {}  # subgraph -> (its Input, its Output), flat names
    for name, node in graph.nodes.items():
        if not isinstance(node, nir.NIRGraph):
            nodes[name] = node
            continue
        inner_nodes, inner_edges = flatten(node)
        nodes.update({f"{name}.{k}": v for k, v in inner_nodes.items()})
        edges += [(f"{name}.{a}", f"{name}.{b}") for a, b in inner_edges]
        ends = [
            [k for k, v in inner_nodes.items() if isinstance(v, kind)]
            for kind in (nir.Input, nir.Output)
        ]
        if [len(e) for e in ends] != [1, 1]:
            raise HarnessError(
                f"subgraph '{name}' needs exactly one Input and one Output node, it has "
                f"{len(ends[0])} and {len(ends[1])}"
            )
        ports[name] = (f"{name}.{ends[0][0]}", f"{name}.{ends[1][0]}")
    for src, dst in graph.edges:
        src = ports[src][1] if src in ports else src
        dst = ports[dst][0] if dst in ports else dst
        edges.append((src, dst))
    # a subgraph's Input and Output nodes pass their values through: join their edges
    for through in [end for pair in ports.values() for end in pair]:
        into = [a for a, b in edges if b == through]
        out = [b for a, b in edges if a == through]
        edges = [e for e in edges if through not in e] + [(a, b) for a in into for b in out]
        del nodes[through]
    return nodes, edges


def lower(graph: nir.NIRGraph, dt: float, scheme: str = "explicit") -> LavaPlan:
    """The Lava populations and connections that run `graph` with time step `dt` seconds,
    its current-based neurons discretised by `scheme` (mapping.py)."""
    nodes, edges = flatten(graph)
    for src, dst in edges:
        for end in (src, dst):
            if end not in nodes:
                raise HarnessError(f"edge ({src!r}, {dst!r}) names node '{end}', which is absent")
    inputs = [n for n, node in nodes.items() if isinstance(node, nir.Input)]
    outputs = [n for n, node in nodes.items() if isinstance(node, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise HarnessError(
            f"the graph needs exactly one Input and one Output node, it has {len(inputs)} "
            f"and {len(outputs)}"
        )
    preds: dict[str, list[str]] = defaultdict(list)
    for src, dst in edges:
        preds[dst].append(src)
    for name, node in nodes.items():
        if not isinstance(node, nir.Input) and not preds[name]:
            raise HarnessError(f"node '{name}' ({type(node).__name__}) has no incoming edge")
    shapes, maps = _shapes(nodes, preds, inputs[0])
    neurons = [n for n, node in nodes.items() if isinstance(node, NEURON_TYPES)]
    signals = {n: _Signal.source(n, int(np.prod(shapes[n]))) for n in neurons + inputs}
    for name in _signal_order(nodes, edges, set(signals)):
        node = nodes[name]
        signal = _Signal.sum([signals[p] for p in preds[name]])
        if isinstance(node, nir.Flatten | nir.Output):
            signals[name] = signal
        elif isinstance(node, LINEAR_TYPES):
            signals[name] = signal.apply(*maps[name])
        elif not isinstance(node, NEURON_TYPES):
            raise HarnessError(f"node '{name}' is a {type(node).__name__}, which is not supported")
    drives = {n: _Signal.sum([signals[p] for p in preds[n]]) for n in neurons}
    layers: dict[str, NeuronLayer] = {}
    latency = {inputs[0]: 0}
    for name in _population_order(drives, nodes, inputs[0]):
        layer = _neuron_layer(name, nodes[name], shapes[name], drives[name], latency, dt, scheme)
        layers[name], latency[name] = layer, layer.latency
    for name, layer in layers.items():
        for conn in layer.inputs:
            if conn.source in layers and not layers[conn.source].spiking:
                raise HarnessError(
                    f"node '{conn.source}' ({layers[conn.source].kind}) is a readout: its "
                    f"voltage can only be the graph's output, not an input of '{name}'"
                )
    return _plan(nodes, outputs[0], signals[outputs[0]], inputs[0], shapes, layers, dt, scheme)


def _shapes(nodes, preds, input_name):
    """Per-sample shapes of every node and the (matrix, bias) of every linear node. A neuron
    takes the shape of its inputs, known from any of them, so shapes pass around cycles."""
    shapes = {input_name: _input_shape(input_name, nodes[input_name])}
    maps: dict[str, tuple[Matrix, np.ndarray]] = {}
    pending = [n for n in nodes if n != input_name]
    while pending:
        progress = False
        for name in list(pending):
            node = nodes[name]
            known = [(p, shapes[p]) for p in preds[name] if p in shapes]
            if not known or (
                not isinstance(node, NEURON_TYPES + (nir.Output,)) and len(known) < len(preds[name])
            ):
                continue
            in_shape = _merged_shape(name, known)
            if isinstance(node, NEURON_TYPES + (nir.Output,)):
                shapes[name] = in_shape
            elif isinstance(node, nir.Flatten):
                shapes[name] = flatten_shape(name, node, in_shape)
            elif isinstance(node, LINEAR_TYPES):
                matrix, bias, shapes[name] = linear_map(name, node, in_shape)
                if not (np.all(np.isfinite(matrix_values(matrix))) and np.all(np.isfinite(bias))):
                    raise HarnessError(
                        f"node '{name}' ({type(node).__name__}) has NaN or infinite weights; "
                        "the graph cannot run (was it exported from a diverged model?)"
                    )
                maps[name] = (matrix, bias)
            else:
                raise HarnessError(
                    f"node '{name}' is a {type(node).__name__}, which is not supported"
                )
            pending.remove(name)
            progress = True
        if not progress:
            cycle = [n for n in sorted(pending) if _reaches(n, n, preds, nodes)]
            raise HarnessError(
                f"the graph has a cycle through {', '.join(cycle)} that passes no neuron node "
                "(an algebraic loop: nothing in it carries a value to the next step)"
            )
    for name in nodes:  # every input of a node has its shape now, also around cycles
        if preds[name]:
            _merged_shape(name, [(p, shapes[p]) for p in preds[name]])
    return shapes, maps


def _reaches(start: str, goal: str, preds, nodes) -> bool:
    """`goal` feeds `start` through non-neuron nodes (a cycle when they are the same)."""
    seen, stack = set(), list(preds[start])
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        if node not in seen and not isinstance(nodes[node], NEURON_TYPES):
            seen.add(node)
            stack += preds[node]
    return False


def _signal_order(nodes, edges, sources: set[str]) -> list[str]:
    """Non-source nodes in an order where each one's inputs come first; neurons and the
    Input are sources (their outputs are known symbols), so cycles through neurons open."""
    indegree = {n: 0 for n in nodes if n not in sources}
    successors: dict[str, list[str]] = defaultdict(list)
    for src, dst in edges:
        if dst in indegree and src not in sources:
            indegree[dst] += 1
            successors[src].append(dst)
    ready = [n for n, d in indegree.items() if d == 0]
    order = []
    while ready:
        name = ready.pop(0)
        order.append(name)
        for nxt in successors[name]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    if len(order) != len(indegree):  # _shapes has refused linear-only cycles already
        raise HarnessError(
            f"the graph has a cycle through {', '.join(sorted(set(indegree) - set(order)))}"
        )
    return order


def _population_order(drives: dict[str, _Signal], nodes, input_name: str) -> list[str]:
    """Neuron nodes, each after the populations that drive it (its own recurrent connection
    aside); a cycle through several neuron nodes is refused."""
    order: list[str] = []
    done = {input_name, CONSTANT}
    remaining = list(drives)
    while remaining:
        ready = [n for n in remaining if set(drives[n].terms) - {n} <= done]
        if not ready:
            cycle = ", ".join(sorted(remaining))
            raise HarnessError(
                f"the graph has a cycle through the neuron nodes {cycle}; only a population's "
                "connection onto itself (through linear nodes) is supported"
            )
        order += ready
        done.update(ready)
        remaining = [n for n in remaining if n not in ready]
    return order


def _plan(nodes, output, signal: _Signal, input_name, shapes, layers, dt, scheme) -> LavaPlan:
    in_shape = shapes[output]
    feeding = list(signal.terms)
    if len(feeding) != 1 or feeding[0] not in layers or signal.terms[feeding[0]] is not None:
        raise HarnessError(
            f"Output '{output}' must be fed by one neuron node (LIF, CubaLIF, IF, or a readout: "
            "LI, CubaLI, I), possibly through Flatten"
        )
    declared = nodes[output].output_type.get("output")
    out_shape = in_shape
    if declared is not None and np.size(declared) > 0:
        declared = tuple(int(s) for s in np.atleast_1d(declared))
        if int(np.prod(declared)) != int(np.prod(in_shape)):
            raise HarnessError(
                f"Output '{output}' declares shape {declared} but receives {in_shape}"
            )
        out_shape = declared
    return LavaPlan(
        input_name=input_name,
        input_shape=shapes[input_name],
        output_layer=feeding[0],
        output_shape=out_shape,
        layers=tuple(layers.values()),
        dt=dt,
        scheme=scheme,
    )


@dataclass(frozen=True)
class _Signal:
    """A node's output as sum_src terms[src] @ spikes[src] + const (None: identity)."""

    terms: dict[str, Matrix | None]
    const: np.ndarray

    @staticmethod
    def source(name: str, size: int) -> _Signal:
        return _Signal({name: None}, np.zeros(size))

    @staticmethod
    def sum(signals: list[_Signal]) -> _Signal:
        if len(signals) == 1:
            return signals[0]
        terms: dict[str, Matrix] = {}
        for signal in signals:
            for src, matrix in signal.terms.items():
                matrix = identity(len(signal.const)) if matrix is None else matrix
                terms[src] = matrix if src not in terms else as_matrix(terms[src] + matrix)
        return _Signal(terms, sum(s.const for s in signals))

    def apply(self, matrix: Matrix, bias: np.ndarray) -> _Signal:
        terms = {
            src: matrix if m is None else as_matrix(matrix @ m) for src, m in self.terms.items()
        }
        return _Signal(terms, matrix @ self.const + bias)


def _neuron_layer(name, node, shape, signal: _Signal, latency, dt, scheme) -> NeuronLayer:
    mapping = map_neuron(name, node, shape, dt, scheme)
    size = int(np.prod(shape))
    hops = {src: latency[src] + 1 for src in signal.terms if src != name}
    if not hops:
        raise HarnessError(f"node '{name}' ({mapping.kind}) is not reached from the Input")
    if len(set(hops.values())) > 1:
        paths = ", ".join(f"{src}: {hop}" for src, hop in hops.items())
        raise HarnessError(
            f"node '{name}' ({mapping.kind}) is reached by paths of unequal Lava latency "
            f"({paths} steps); skip connections are not supported"
        )
    if name in signal.terms and mapping.input_lag:
        raise HarnessError(
            f"node '{name}' ({mapping.kind}) is recurrent, and under --scheme {scheme} its "
            "input lags one step, so its own spikes would need a two-step delay; run it with "
            "--scheme semi-implicit (the order of snnTorch's RSynaptic and Loihi's CUBA neuron)"
        )
    lagged = mapping.input_lag > 0
    inputs = [
        Connection(
            src,
            scale_rows(mapping.gain, identity(size) if m is None else m),
            clear_at_window_start=lagged or src == name,
        )
        for src, m in signal.terms.items()
    ]
    bias = mapping.bias
    current_bias = mapping.gain * signal.const
    if mapping.bias_enters_current:
        if np.any(current_bias != 0):
            inputs.append(Connection(CONSTANT, current_bias[:, None], clear_at_window_start=lagged))
    else:
        bias = bias + current_bias
    return NeuronLayer(
        name=name,
        kind=mapping.kind,
        shape=shape,
        du=mapping.du,
        dv=mapping.dv,
        vth=1.0,
        bias_mant=bias,
        inputs=tuple(inputs),
        latency=next(iter(hops.values())) - mapping.input_lag,
        v_rest=mapping.rest,
        spiking=mapping.spiking,
    )


def _input_shape(name: str, node: nir.Input) -> tuple[int, ...]:
    shape = node.input_type.get("input")
    shape = () if shape is None else tuple(int(s) for s in np.atleast_1d(shape))
    if not shape or min(shape) < 1:
        raise HarnessError(f"Input '{name}' has no valid shape ({shape})")
    return shape


def _merged_shape(name: str, incoming: list[tuple[str, tuple[int, ...]]]) -> tuple[int, ...]:
    shapes = {shape for _, shape in incoming}
    if len(shapes) > 1:
        listed = ", ".join(f"{src} {shape}" for src, shape in incoming)
        raise HarnessError(f"node '{name}' sums inputs of different shapes ({listed})")
    return incoming[0][1]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
