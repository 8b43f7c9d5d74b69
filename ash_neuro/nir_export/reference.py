"""What a NIR graph means, in NumPy: the oracle that both the export and the Lava harness are
checked against.

Written from NIR's documented equations (nir/ir/neuron.py), not from Norse or hardware/: one
input step per time step of length dt, no delay inside a step (a spike reaches the next layer
in the step it is emitted), with a = dt / tau:

    LIF      v += a * ((v_leak - v) + r I)                       spikes
    IF       v += dt * r I                                       spikes
    CubaLIF  i += a_syn * (-i + w_in I);  v += a_mem * ((v_leak - v) + r i)   spikes
    LI       as LIF, never spikes                                voltage
    CubaLI   as CubaLIF, never spikes                            voltage
    I        v += dt * r I  (NIR's Integrator), never spikes     voltage
    spike where v > v_threshold (strict), then v = v_reset there.

Two orders of the current-based step (`SCHEMES`; they differ only for CubaLIF and CubaLI):
- "explicit" (forward Euler, the default): both updates from the state before the step, so
  the voltage sees the current *before* this step's input, one step behind it;
- "semi-implicit": the current first, the voltage from the new current: snnTorch's Synaptic
  (mem = beta mem + syn_new), Norse's LIFCell (its current jump precedes the voltage step) and
  Lava's / Loihi's CUBA neuron (u[t] then v[t] = ... + u[t]).

Every sample starts from rest: v = v_leak and i = 0 (IF at v = v_reset, I at v = 0). NIR
leaves the initial state open; rest is where LIF's equation settles without input, and where
Norse's cells start (LIFBoxCell, LIFCell: v = v_leak; IAFCell: v = v_reset), so that a graph
exported from Norse means here what it computed there. The Lava harness starts from the same
state (hardware/mapping.py).

Recurrence. NIR's edges carry no delay, so a cycle needs one: within a cycle (a strongly
connected set of nodes), every edge *out of a neuron node* carries that neuron's output of the
previous step (zeros before the first step of a sample); all other edges deliver within the
step. A recurrent layer (snnTorch's RLeaky/RSynaptic: neuron -> Affine -> the same neuron) thus
gets the recurrent input of its own step-t spikes at step t + 1, and an affine bias on the
recurrent path acts from step 0. A cycle without a neuron (an algebraic loop) is an error.

Nested graphs: a node that is itself a `NIRGraph` (one Input, one Output) runs as its own
graph inside the step; edges may name it (through its Input and Output) or name its nodes as
`subgraph.node`. Its neurons are reported as `subgraph.node`.

Linear nodes: Affine, Linear, Scale, Conv2d, SumPool2d, AvgPool2d (PyTorch's
cross-correlation on (C, H, W), padding counted in the average) and Flatten (over the
per-sample shape). Torch-free: the Lava environment may import it too.
"""

from __future__ import annotations

from collections import defaultdict

import nir
import numpy as np

from ash_neuro.nir_export.contract import NIRExportError

SPIKING_TYPES = (nir.LIF, nir.IF, nir.CubaLIF)
READOUT_TYPES = (nir.LI, nir.CubaLI, nir.I)
NEURON_TYPES = SPIKING_TYPES + READOUT_TYPES
SCHEMES = ("explicit", "semi-implicit")


def simulate(
    graph: nir.NIRGraph,
    inputs: np.ndarray,
    dt: float,
    dtype: type = np.float64,
    scheme: str = "explicit",
) -> dict[str, np.ndarray]:
    """Spikes of every spiking node, the voltage of every readout (LI, CubaLI, I) and the
    Output node's values, each (samples, T, *shape).

    `inputs` (samples, T, *input_shape) feed the Input node one step at a time; every
    sample starts from rest. All arithmetic is in `dtype`: float64 for an oracle, float32 to
    follow a float32 network step for step (the export's check against Norse). `scheme`: the
    order of a current-based neuron's two updates (module docstring).
    """
    if scheme not in SCHEMES:
        raise NIRExportError(f"unknown scheme {scheme!r}; use {' or '.join(SCHEMES)}")
    inputs = np.asarray(inputs, dtype=dtype)
    network = _Graph(graph, dtype(dt), scheme, dtype)
    inputs_of = [name for name, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(inputs_of) != 1:
        raise NIRExportError(f"the graph needs one Input node, it has {len(inputs_of)}")
    network.start(inputs.shape[0], inputs.shape[2:])
    record: dict[str, list[np.ndarray]] = defaultdict(list)
    # Time-major and contiguous: each step is one (samples, *shape) block.
    for x in np.ascontiguousarray(np.moveaxis(inputs, 1, 0)):
        values = network.step(x, record)
        for name, node in graph.nodes.items():
            if isinstance(node, nir.Output):
                record[name].append(values[name])
    return {name: np.stack(trace, axis=1) for name, trace in record.items()}


class _Graph:
    """One (sub)graph, stepped: nodes in an order where each non-delayed input is ready."""

    def __init__(self, graph: nir.NIRGraph, dt, scheme: str, dtype: type, prefix: str = ""):
        self.graph, self.dt, self.scheme, self.dtype, self.prefix = (
            graph,
            dt,
            scheme,
            dtype,
            prefix,
        )
        self.subgraphs = {
            name: _Graph(node, dt, scheme, dtype, f"{prefix}{name}.")
            for name, node in graph.nodes.items()
            if isinstance(node, nir.NIRGraph)
        }
        edges = [(self._port(src, "out"), self._port(dst, "in")) for src, dst in graph.edges]
        self.preds: dict[str, list[tuple[str, bool]]] = defaultdict(list)
        for src, dst in edges:
            self.preds[dst].append((src, self._delayed(src, dst, edges)))
        self.order = _order(list(graph.nodes), self.preds, prefix)

    def _port(self, end: str, side: str) -> str:
        """An edge's end as a node of this graph: `sub.node` names a subgraph's node, which
        this graph reaches through the subgraph's Input (side "in") or Output (side "out")."""
        if end in self.graph.nodes:
            return end
        head, _, rest = end.partition(".")
        if head in self.subgraphs and rest:
            self.subgraphs[head].expose(rest, side)
            return head
        raise NIRExportError(f"edge end '{self.prefix}{end}' names no node of the graph")

    def expose(self, inner: str, side: str) -> None:
        """Edges of the parent graph reach `inner` directly, as if through the Input/Output."""
        node = self.graph.nodes.get(inner)
        kind = nir.Input if side == "in" else nir.Output
        if not isinstance(node, kind):
            raise NIRExportError(
                f"an edge of the enclosing graph reaches '{self.prefix}{inner}' directly; the "
                "reference enters a subgraph only through its Input and Output nodes"
            )

    def _delayed(self, src: str, dst: str, edges) -> bool:
        """An edge out of a neuron back into a node that reaches it: a cycle's delay."""
        if not isinstance(self.graph.nodes[src], NEURON_TYPES):
            return False
        return _reaches([dst], src, lambda node: [b for a, b in edges if a == node])

    def start(self, samples: int, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Set every node to rest for `samples` rows; returns the Output's per-sample shape."""
        self.samples = samples
        self.shapes = self._shapes(input_shape)
        self.states = {
            name: _rest(node, (samples, *self.shapes[name]), self.dtype)
            for name, node in self.graph.nodes.items()
            if isinstance(node, NEURON_TYPES)
        }
        self.previous = {
            name: np.zeros((samples, *self.shapes[name]), dtype=self.dtype) for name in self.states
        }
        outputs = [n for n, node in self.graph.nodes.items() if isinstance(node, nir.Output)]
        return self.shapes[outputs[0]] if len(outputs) == 1 else ()

    def _shapes(self, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        """Per-sample output shapes: a neuron's is that of its inputs, known from any of them."""
        shapes: dict[str, tuple[int, ...]] = {}
        pending = list(self.order)
        while pending:
            progress = False
            for name in list(pending):
                node = self.graph.nodes[name]
                known = [shapes[src] for src, _ in self.preds[name] if src in shapes]
                if isinstance(node, nir.Input):
                    shapes[name] = tuple(input_shape)
                elif isinstance(node, NEURON_TYPES + (nir.Output,)) and known:
                    shapes[name] = known[0]
                elif len(known) == len(self.preds[name]) and known:
                    probe = np.zeros((1, *known[0]), dtype=self.dtype)
                    if isinstance(node, nir.NIRGraph):
                        shapes[name] = self.subgraphs[name].start(self.samples, known[0])
                    else:
                        shapes[name] = _linear(self.prefix + name, node, probe, self.dtype).shape[
                            1:
                        ]
                else:
                    continue
                pending.remove(name)
                progress = True
            if not progress:
                raise NIRExportError(
                    f"cannot tell the shapes of {', '.join(self.prefix + n for n in pending)}"
                )
        return shapes

    def step(self, x: np.ndarray, record: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
        """Every node's value at this step, `x` entering the Input; neurons are recorded."""
        values: dict[str, np.ndarray] = {}
        for name in self.order:
            node = self.graph.nodes[name]
            if isinstance(node, nir.Input):
                values[name] = x
                continue
            terms = [
                self.previous[src] if delayed else values[src] for src, delayed in self.preds[name]
            ]
            if not terms:
                raise NIRExportError(f"node '{self.prefix}{name}' has no incoming edge")
            current = sum(terms)
            if isinstance(node, NEURON_TYPES):
                values[name] = _neuron_step(node, current, self.states[name], self.dt, self.scheme)
                record[self.prefix + name].append(values[name])
            elif isinstance(node, nir.Output):
                values[name] = current
            elif isinstance(node, nir.NIRGraph):
                inner = self.subgraphs[name].step(current, record)
                outputs = [n for n, o in node.nodes.items() if isinstance(o, nir.Output)]
                values[name] = inner[outputs[0]]
            else:
                values[name] = _linear(self.prefix + name, node, current, self.dtype)
        self.previous.update({name: values[name] for name in self.previous})
        return values


def _order(names: list[str], preds, prefix: str) -> list[str]:
    """Topological order over the edges that deliver within the step."""
    order: list[str] = []
    remaining = list(names)
    while remaining:
        ready = [
            name
            for name in remaining
            if all(src in order for src, delayed in preds[name] if not delayed)
        ]
        if not ready:
            cycle = ", ".join(prefix + n for n in sorted(remaining) if _on_cycle(n, preds))
            raise NIRExportError(
                f"the graph has a cycle through {cycle} that passes no neuron node (an "
                "algebraic loop: nothing in it carries a value to the next step)"
            )
        order += ready
        remaining = [name for name in remaining if name not in ready]
    return order


def _on_cycle(name: str, preds) -> bool:
    """`name` reaches itself over edges that deliver within the step."""

    def within(node: str) -> list[str]:
        return [src for src, delayed in preds[node] if not delayed]

    return _reaches(within(name), name, within)


def _reaches(start: list[str], goal: str, neighbours) -> bool:
    """`goal` is reached from `start` by repeatedly following `neighbours(node)`."""
    seen, stack = set(), list(start)
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            stack += neighbours(node)
    return False


def _rest(node: nir.NIRNode, shape: tuple[int, ...], dtype: type) -> dict[str, np.ndarray]:
    """The state every sample starts from (see the module docstring)."""
    if isinstance(node, nir.I):
        start = 0.0
    else:
        start = node.v_reset if isinstance(node, nir.IF) else node.v_leak
    state = {"v": np.broadcast_to(_param(start, shape, dtype), shape).astype(dtype)}
    if isinstance(node, nir.CubaLIF | nir.CubaLI):
        state["i"] = np.zeros(shape, dtype=dtype)
    return state


def _neuron_step(node: nir.NIRNode, current: np.ndarray, state: dict, dt, scheme: str):
    """One step of `state` driven by `current`: the spikes (0/1) of a spiking node, the
    voltage after the step of a readout."""
    shape, dtype = current.shape, current.dtype.type
    v = state["v"]
    if isinstance(node, nir.LIF | nir.LI):
        tau, r, v_leak = (_param(p, shape, dtype) for p in (node.tau, node.r, node.v_leak))
        v = v + (dt / tau) * ((v_leak - v) + r * current)
    elif isinstance(node, nir.IF | nir.I):
        v = v + dt * _param(node.r, shape, dtype) * current
    else:
        tau_mem, tau_syn, r, w_in, v_leak = (
            _param(p, shape, dtype)
            for p in (node.tau_mem, node.tau_syn, node.r, node.w_in, node.v_leak)
        )
        i = state["i"]
        i_next = i + (dt / tau_syn) * (-i + w_in * current)
        drive = i_next if scheme == "semi-implicit" else i
        v = v + (dt / tau_mem) * ((v_leak - v) + r * drive)
        state["i"] = i_next
    if isinstance(node, READOUT_TYPES):
        state["v"] = v.astype(dtype)
        return state["v"].copy()
    spikes = v > _param(node.v_threshold, shape, dtype)
    state["v"] = np.where(spikes, _param(node.v_reset, shape, dtype), v).astype(dtype)
    return spikes.astype(dtype)


def _linear(name: str, node: nir.NIRNode, x: np.ndarray, dtype: type) -> np.ndarray:
    """A linear node applied to `x` (samples, *shape)."""
    samples = x.shape[0]
    if isinstance(node, nir.Affine):
        weight, bias = np.asarray(node.weight, dtype), np.asarray(node.bias, dtype)
        return x.reshape(samples, -1) @ weight.T + bias
    if isinstance(node, nir.Linear):
        return x.reshape(samples, -1) @ np.asarray(node.weight, dtype).T
    if isinstance(node, nir.Scale):
        scale = np.asarray(node.scale, dtype).reshape(-1)
        return (x.reshape(samples, -1) * scale).reshape(x.shape)
    if isinstance(node, nir.Flatten):
        return x.reshape(samples, *_flattened(node, x.shape[1:]))
    if isinstance(node, nir.Conv2d):
        weight = np.asarray(node.weight, dtype)
        out = _correlate(x, weight, node.stride, node.padding, node.dilation, int(node.groups))
        bias = np.asarray(node.bias, dtype).reshape(-1)
        return out + bias[:, None, None] if bias.size else out
    if isinstance(node, nir.SumPool2d | nir.AvgPool2d):
        kernel = tuple(int(k) for k in np.broadcast_to(node.kernel_size, (2,)))
        channels = x.shape[1]
        scale = 1.0 / np.prod(kernel) if isinstance(node, nir.AvgPool2d) else 1.0
        weight = np.full((channels, 1, *kernel), scale, dtype=dtype)
        stride = node.stride if node.stride is not None else kernel
        return _correlate(x, weight, stride, node.padding, 1, channels)
    raise NIRExportError(
        f"node '{name}' is a {type(node).__name__}, which the NumPy reference cannot run"
    )


def _correlate(x, weight, stride, padding, dilation, groups: int) -> np.ndarray:
    """PyTorch's cross-correlation of x (samples, C, H, W) with weight (C_out, C/groups, kh,
    kw): NIR's Conv2d, and pooling as a per-channel one."""
    out_channels, group_in, kh, kw = weight.shape
    sy, sx = _pair(stride)
    dy, dx = _pair(dilation)
    span = (dy * (kh - 1), dx * (kw - 1))
    if isinstance(padding, bytes):
        padding = padding.decode()
    if isinstance(padding, str):  # "same" (stride 1) or "valid"
        before = tuple(s // 2 for s in span) if padding == "same" else (0, 0)
        after = tuple(s - b for s, b in zip(span, before)) if padding == "same" else (0, 0)
    else:
        before = after = _pair(padding)
    x = np.pad(x, ((0, 0), (0, 0), (before[0], after[0]), (before[1], after[1])))
    out_h = (x.shape[2] - span[0] - 1) // sy + 1
    out_w = (x.shape[3] - span[1] - 1) // sx + 1
    out = np.zeros((x.shape[0], out_channels, out_h, out_w), dtype=x.dtype)
    per_group = out_channels // groups
    for g in range(groups):
        xs = x[:, g * group_in : (g + 1) * group_in]
        outs = slice(g * per_group, (g + 1) * per_group)
        for ky in range(kh):
            for kx in range(kw):
                rows = slice(ky * dy, ky * dy + sy * (out_h - 1) + 1, sy)
                cols = slice(kx * dx, kx * dx + sx * (out_w - 1) + 1, sx)
                patch = xs[:, :, rows, cols]  # (samples, group_in, out_h, out_w)
                out[:, outs] += np.einsum("scyx,oc->soyx", patch, weight[outs, :, ky, kx])
    return out


def _flattened(node: nir.Flatten, shape: tuple[int, ...]) -> tuple[int, ...]:
    """NIR's Flatten over the per-sample shape (dims counted without the batch)."""
    ndim = len(shape)
    start, end = int(node.start_dim) % ndim, int(node.end_dim) % ndim
    return (*shape[:start], int(np.prod(shape[start : end + 1])), *shape[end + 1 :])


def _param(value, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """A neuron parameter in `dtype`, shaped to broadcast against (samples, *shape) values."""
    array = np.asarray(value, dtype=dtype)
    per_sample = shape[1:]
    if array.size == int(np.prod(per_sample)) and array.shape != per_sample:
        array = array.reshape(per_sample)
    return array


def _pair(value) -> tuple[int, int]:
    return tuple(int(v) for v in np.broadcast_to(np.asarray(value).reshape(-1), (2,)))
