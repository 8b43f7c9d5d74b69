"""A NIR graph (HDF5) -> a `LavaPlan`: read, check every node's shape, lower to populations.

Supported nodes: Input, Output, the linear maps Affine, Linear, Scale, Conv2d, SumPool2d and
AvgPool2d, Flatten, and the neurons LIF, CubaLIF and IF. Everything between two neuron
populations is linear, so chains of linear maps are multiplied into one connection matrix per
(source population, target population): one Lava Dense (or Sparse, for convolutions and
pooling) hop per source, whatever the chain. Tensors are flattened in C order, NIR's (C, H, W)
layout; convolutions become sparse matrices in that layout rather than Lava `Conv` processes,
whose fixed-point model (lava-nc 0.10) ignores `weight_exp` and which expect (W, H, C) data.

Not supported, each a one-line error naming the node: recurrent edges (cycles), paths of
unequal Lava latency into one population (a skip connection would need a delay), several
Input or Output nodes, nested subgraphs, and any other node type.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import h5py
import nir
import numpy as np
from scipy import sparse

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

LINEAR_TYPES = (nir.Affine, nir.Linear, nir.Scale, nir.Conv2d, nir.SumPool2d, nir.AvgPool2d)
SUPPORTED = ("Input", "Output", "Flatten") + tuple(t.__name__ for t in LINEAR_TYPES + NEURON_TYPES)


def read_graph(path: str | Path) -> nir.NIRGraph:
    """Load a NIR file, refusing unsupported node types by name before `nir` parses them."""
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"NIR graph {path} does not exist")
    try:
        with h5py.File(path, "r") as f:
            nodes = f["node"]["nodes"]
            types = {name: _text(nodes[name]["type"][()]) for name in nodes}
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


def lower(graph: nir.NIRGraph, dt: float) -> LavaPlan:
    """The Lava populations and connections that run `graph` with time step `dt` seconds."""
    order = _topological_order(graph)
    inputs = [n for n in order if isinstance(graph.nodes[n], nir.Input)]
    outputs = [n for n in order if isinstance(graph.nodes[n], nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise HarnessError(
            f"the graph needs exactly one Input and one Output node, it has {len(inputs)} "
            f"and {len(outputs)}"
        )
    preds: dict[str, list[str]] = defaultdict(list)
    for src, dst in graph.edges:
        preds[dst].append(src)

    shapes: dict[str, tuple[int, ...]] = {}
    signals: dict[str, _Signal] = {}
    layers: dict[str, NeuronLayer] = {}
    latency = {inputs[0]: 0}
    output_signal = None
    for name in order:
        node = graph.nodes[name]
        if isinstance(node, nir.Input):
            shapes[name] = _input_shape(name, node)
            signals[name] = _Signal.source(name, int(np.prod(shapes[name])))
            continue
        if not preds[name]:
            raise HarnessError(f"node '{name}' ({type(node).__name__}) has no incoming edge")
        in_shape = _merged_shape(name, [(p, shapes[p]) for p in preds[name]])
        signal = _Signal.sum([signals[p] for p in preds[name]])
        if isinstance(node, nir.Output):
            shapes[name], output_signal = in_shape, signal
        elif isinstance(node, nir.Flatten):
            shapes[name], signals[name] = _flatten_shape(name, node, in_shape), signal
        elif isinstance(node, LINEAR_TYPES):
            matrix, bias, shapes[name] = _linear_map(name, node, in_shape)
            if not (np.all(np.isfinite(matrix_values(matrix))) and np.all(np.isfinite(bias))):
                raise HarnessError(
                    f"node '{name}' ({type(node).__name__}) has NaN or infinite weights; the "
                    "graph cannot run (was it exported from a diverged model?)"
                )
            signals[name] = signal.apply(matrix, bias)
        elif isinstance(node, NEURON_TYPES):
            layer = _neuron_layer(name, node, in_shape, signal, latency, dt)
            layers[name], shapes[name], latency[name] = layer, in_shape, layer.latency
            signals[name] = _Signal.source(name, layer.size)
        else:
            raise HarnessError(f"node '{name}' is a {type(node).__name__}, which is not supported")
    return _plan(graph, outputs[0], output_signal, inputs[0], shapes, layers, dt)


def _plan(graph, output, signal: _Signal, input_name, shapes, layers, dt) -> LavaPlan:
    in_shape = shapes[output]
    feeding = list(signal.terms)
    if len(feeding) != 1 or feeding[0] not in layers or signal.terms[feeding[0]] is not None:
        raise HarnessError(
            f"Output '{output}' must be fed by one spiking layer (LIF, CubaLIF or IF), "
            "possibly through Flatten"
        )
    declared = graph.nodes[output].output_type.get("output")
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
                matrix = _identity(len(signal.const)) if matrix is None else matrix
                terms[src] = matrix if src not in terms else _as_matrix(terms[src] + matrix)
        return _Signal(terms, sum(s.const for s in signals))

    def apply(self, matrix: Matrix, bias: np.ndarray) -> _Signal:
        terms = {
            src: matrix if m is None else _as_matrix(matrix @ m) for src, m in self.terms.items()
        }
        return _Signal(terms, matrix @ self.const + bias)


def _neuron_layer(name, node, shape, signal: _Signal, latency, dt) -> NeuronLayer:
    mapping = map_neuron(name, node, shape, dt)
    size = int(np.prod(shape))
    hops = {src: latency[src] + 1 for src in signal.terms}
    if len(set(hops.values())) > 1:
        paths = ", ".join(f"{src}: {hop}" for src, hop in hops.items())
        raise HarnessError(
            f"node '{name}' ({mapping.kind}) is reached by paths of unequal Lava latency "
            f"({paths} steps); skip connections are not supported"
        )
    inputs = [
        Connection(src, _scale_rows(mapping.gain, _identity(size) if m is None else m))
        for src, m in signal.terms.items()
    ]
    bias = mapping.bias
    current_bias = mapping.gain * signal.const
    if mapping.bias_enters_current:
        if np.any(current_bias != 0):
            inputs.append(Connection(CONSTANT, current_bias[:, None]))
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
        clear_input_at_window_start=mapping.input_lag > 0,
        v_rest=mapping.rest,
    )


def _linear_map(name: str, node, shape) -> tuple[Matrix, np.ndarray, tuple[int, ...]]:
    """(matrix, bias, output shape) of a linear node applied to a flattened `shape` input."""
    kind = type(node).__name__
    size = int(np.prod(shape))
    if isinstance(node, nir.Affine | nir.Linear):
        weight = np.asarray(node.weight, dtype=np.float64)
        if weight.ndim != 2 or weight.shape[1] != size:
            raise HarnessError(
                f"node '{name}' ({kind}): weight of shape {weight.shape} cannot take an input "
                f"of shape {shape} ({size} values)"
            )
        bias = np.zeros(weight.shape[0])
        if isinstance(node, nir.Affine):
            bias = np.asarray(node.bias, dtype=np.float64).reshape(-1)
            if bias.shape != (weight.shape[0],):
                raise HarnessError(
                    f"node '{name}' (Affine): bias has {bias.size} values for "
                    f"{weight.shape[0]} outputs"
                )
        return weight, bias, (weight.shape[0],)
    if isinstance(node, nir.Scale):
        scale = np.asarray(node.scale, dtype=np.float64).reshape(-1)
        if scale.size not in (1, size):
            raise HarnessError(
                f"node '{name}' (Scale): scale has {scale.size} values for input {shape}"
            )
        return sparse.diags(np.broadcast_to(scale, (size,))).tocsr(), np.zeros(size), shape
    if len(shape) != 3:
        raise HarnessError(f"node '{name}' ({kind}) needs a (C, H, W) input, got shape {shape}")
    channels = shape[0]
    if isinstance(node, nir.Conv2d):
        weight = np.asarray(node.weight, dtype=np.float64)
        groups = int(node.groups)
        if weight.ndim != 4 or groups < 1 or weight.shape[1] * groups != channels:
            raise HarnessError(
                f"node '{name}' (Conv2d): weight of shape {weight.shape} with {groups} groups "
                f"cannot take an input of shape {shape}"
            )
        if weight.shape[0] % groups:
            raise HarnessError(f"node '{name}' (Conv2d): output channels not divisible by groups")
        bias = np.asarray(node.bias, dtype=np.float64).reshape(-1)
        if bias.size not in (0, weight.shape[0]):
            raise HarnessError(f"node '{name}' (Conv2d): bias has {bias.size} values")
        geometry = _Window.of(name, node, weight.shape[2:], shape)
        if node.input_shape is not None and tuple(np.atleast_1d(node.input_shape)) != shape[1:]:
            raise HarnessError(
                f"node '{name}' (Conv2d): declares input (H, W) = "
                f"{tuple(np.atleast_1d(node.input_shape))} but receives {shape}"
            )
    else:
        kernel = tuple(int(k) for k in np.broadcast_to(node.kernel_size, (2,)))
        groups = channels
        scale = 1.0 / np.prod(kernel) if isinstance(node, nir.AvgPool2d) else 1.0
        weight = np.full((channels, 1, *kernel), scale)
        bias = np.zeros(0)
        geometry = _Window.of(name, node, kernel, shape)
    matrix = geometry.matrix(weight, groups)
    out_shape = (weight.shape[0], *geometry.out_hw)
    bias = np.repeat(bias, np.prod(geometry.out_hw)) if bias.size else np.zeros(matrix.shape[0])
    return matrix, bias, out_shape


@dataclass(frozen=True)
class _Window:
    """Geometry of a 2-d sliding window (convolution or pooling) over a (C, H, W) input."""

    in_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pad_before: tuple[int, int]
    out_hw: tuple[int, int]

    @staticmethod
    def of(name: str, node, kernel, in_shape) -> _Window:
        kernel = tuple(int(k) for k in kernel)
        stride = _pair(node.stride if node.stride is not None else kernel)
        dilation = _pair(getattr(node, "dilation", 1))
        padding = node.padding
        if isinstance(padding, bytes):
            padding = padding.decode()
        span = tuple(d * (k - 1) for d, k in zip(dilation, kernel))
        if isinstance(padding, str) and padding == "same":
            if stride != (1, 1):
                raise HarnessError(f"node '{name}': padding 'same' needs stride 1")
            before = tuple(s // 2 for s in span)
            total = span
        elif isinstance(padding, str):
            before = total = (0, 0)
        else:
            before = _pair(padding)
            total = tuple(2 * p for p in before)
        out_hw = tuple(
            (n + t - s - 1) // st + 1 for n, t, s, st in zip(in_shape[1:], total, span, stride)
        )
        if min(out_hw) < 1 or min(stride) < 1 or min(dilation) < 1:
            raise HarnessError(
                f"node '{name}' ({type(node).__name__}): a {kernel} window with stride "
                f"{stride} and padding {padding} does not fit an input of shape {in_shape}"
            )
        return _Window(in_shape, kernel, stride, dilation, before, out_hw)

    def matrix(self, weight: np.ndarray, groups: int) -> sparse.csr_matrix:
        """Sparse (C_out*H_out*W_out, C*H*W) matrix of the cross-correlation NIR means."""
        channels, height, width = self.in_shape
        out_channels, group_in = weight.shape[:2]
        out_h, out_w = self.out_hw
        o, oy, ox = np.meshgrid(
            np.arange(out_channels), np.arange(out_h), np.arange(out_w), indexing="ij"
        )
        rows = (o * out_h + oy) * out_w + ox
        group = o // (out_channels // groups)
        row_ids, col_ids, values = [], [], []
        for c in range(group_in):
            for ky in range(self.kernel[0]):
                for kx in range(self.kernel[1]):
                    iy = oy * self.stride[0] - self.pad_before[0] + ky * self.dilation[0]
                    ix = ox * self.stride[1] - self.pad_before[1] + kx * self.dilation[1]
                    inside = (iy >= 0) & (iy < height) & (ix >= 0) & (ix < width)
                    channel = group * group_in + c
                    row_ids.append(rows[inside])
                    col_ids.append(((channel * height + iy) * width + ix)[inside])
                    values.append(weight[o[inside], c, ky, kx])
        shape = (out_channels * out_h * out_w, channels * height * width)
        return sparse.csr_matrix(
            (np.concatenate(values), (np.concatenate(row_ids), np.concatenate(col_ids))),
            shape=shape,
        )


def _flatten_shape(name: str, node: nir.Flatten, shape) -> tuple[int, ...]:
    """NIR's Flatten over the (batch-free) shape; the C-order data itself is unchanged."""
    ndim = len(shape)
    start = int(node.start_dim) % ndim if ndim else 0
    end = int(node.end_dim) % ndim if ndim else 0
    if start > end:
        raise HarnessError(f"node '{name}' (Flatten): start_dim {start} is after end_dim {end}")
    return (*shape[:start], int(np.prod(shape[start : end + 1])), *shape[end + 1 :])


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


def _topological_order(graph: nir.NIRGraph) -> list[str]:
    for src, dst in graph.edges:
        for end in (src, dst):
            if end not in graph.nodes:
                raise HarnessError(f"edge ({src!r}, {dst!r}) names node '{end}', which is absent")
    indegree = {name: 0 for name in graph.nodes}
    successors: dict[str, list[str]] = defaultdict(list)
    for src, dst in graph.edges:
        indegree[dst] += 1
        successors[src].append(dst)
    ready = [name for name, degree in indegree.items() if degree == 0]
    order = []
    while ready:
        name = ready.pop(0)
        order.append(name)
        for nxt in successors[name]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    if len(order) != len(graph.nodes):
        cycle = sorted(set(graph.nodes) - set(order))
        raise HarnessError(
            f"the graph has a cycle through {', '.join(cycle)}; recurrent connections are "
            "not supported"
        )
    return order


def _scale_rows(gain: np.ndarray, matrix: Matrix) -> Matrix:
    if sparse.issparse(matrix):
        return sparse.diags(gain) @ matrix
    return gain[:, None] * matrix


def _as_matrix(matrix) -> Matrix:
    return matrix.tocsr() if sparse.issparse(matrix) else np.asarray(matrix)


def _identity(size: int) -> sparse.csr_matrix:
    return sparse.identity(size, format="csr")


def _pair(value) -> tuple[int, int]:
    return tuple(int(v) for v in np.broadcast_to(np.asarray(value).reshape(-1), (2,)))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
