"""What a NIR graph means, in NumPy: the oracle that both the export and the Lava harness are
checked against.

Written from NIR's documented equations (nir/ir/neuron.py), not from Norse or hardware/:
forward Euler with step dt, one input step per time step, no delay inside a step (a spike
reaches the next layer in the step it is emitted):

    LIF      v += dt/tau * ((v_leak - v) + r I)
    IF       v += dt * r I
    CubaLIF  v += dt/tau_mem * ((v_leak - v) + r i);  i += dt/tau_syn * (-i + w_in I)
             (both from the state before the step: explicit Euler)
    spike where v > v_threshold (strict), then v = v_reset there.

Every sample starts from rest: v = v_leak and i = 0 (IF, which has no leak, at v = v_reset).
NIR leaves the initial state open; rest is where LIF's equation settles without input, and
where Norse's cells start (LIFBoxCell, LIFCell: v = v_leak; IAFCell: v = v_reset), so that a
graph exported from Norse means here what it computed there. The Lava harness starts from the
same state (hardware/mapping.py).

Linear nodes: Affine, Linear, Scale, Conv2d, SumPool2d, AvgPool2d (PyTorch's
cross-correlation on (C, H, W), padding counted in the average) and Flatten (over the
per-sample shape). Torch-free: the Lava environment may import it too.
"""

from __future__ import annotations

from collections import defaultdict

import nir
import numpy as np

from ash_neuro.nir_export.contract import NIRExportError

NEURON_TYPES = (nir.LIF, nir.IF, nir.CubaLIF)


def simulate(
    graph: nir.NIRGraph, inputs: np.ndarray, dt: float, dtype: type = np.float64
) -> dict[str, np.ndarray]:
    """Spikes of every neuron node and the Output node's values, each (samples, T, *shape).

    `inputs` (samples, T, *input_shape) feed the Input node one step at a time; every
    sample starts from rest. All arithmetic is in `dtype`: float64 for an oracle, float32 to
    follow a float32 network step for step (the export's check against Norse).
    """
    order = _topological_order(graph)
    preds: dict[str, list[str]] = defaultdict(list)
    for src, dst in graph.edges:
        preds[dst].append(src)
    inputs = np.asarray(inputs, dtype=dtype)
    # Time-major and contiguous: each step is one (samples, *shape) block.
    steps = np.ascontiguousarray(np.moveaxis(inputs, 1, 0))
    states: dict[str, dict[str, np.ndarray]] = {}
    record: dict[str, list[np.ndarray]] = defaultdict(list)
    for x in steps:
        values: dict[str, np.ndarray] = {}
        for name in order:
            node = graph.nodes[name]
            if isinstance(node, nir.Input):
                values[name] = x
                continue
            current = sum(values[p] for p in preds[name])
            if isinstance(node, NEURON_TYPES):
                state = states.setdefault(name, _rest(node, current.shape, dtype))
                values[name] = _neuron_step(node, current, state, dtype(dt))
                record[name].append(values[name])
            elif isinstance(node, nir.Output):
                values[name] = current
                record[name].append(current)
            else:
                values[name] = _linear(name, node, current, dtype)
    return {name: np.stack(trace, axis=1) for name, trace in record.items()}


def _rest(node: nir.NIRNode, shape: tuple[int, ...], dtype: type) -> dict[str, np.ndarray]:
    """The state every sample starts from (see the module docstring)."""
    start = node.v_reset if isinstance(node, nir.IF) else node.v_leak
    state = {"v": np.broadcast_to(_param(start, shape, dtype), shape).astype(dtype)}
    if isinstance(node, nir.CubaLIF):
        state["i"] = np.zeros(shape, dtype=dtype)
    return state


def _neuron_step(node: nir.NIRNode, current: np.ndarray, state: dict, dt) -> np.ndarray:
    """One forward-Euler step of `state` driven by `current`; returns the spikes (0/1)."""
    shape, dtype = current.shape, current.dtype.type
    v = state["v"]
    if isinstance(node, nir.LIF):
        tau, r, v_leak = (_param(p, shape, dtype) for p in (node.tau, node.r, node.v_leak))
        v = v + (dt / tau) * ((v_leak - v) + r * current)
    elif isinstance(node, nir.IF):
        v = v + dt * _param(node.r, shape, dtype) * current
    else:
        tau_mem, tau_syn, r, w_in, v_leak = (
            _param(p, shape, dtype)
            for p in (node.tau_mem, node.tau_syn, node.r, node.w_in, node.v_leak)
        )
        i = state["i"]
        v = v + (dt / tau_mem) * ((v_leak - v) + r * i)
        state["i"] = i + (dt / tau_syn) * (-i + w_in * current)
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


def _topological_order(graph: nir.NIRGraph) -> list[str]:
    remaining = list(graph.nodes)
    order: list[str] = []
    while remaining:
        ready = [
            name
            for name in remaining
            if all(src in order for src, dst in graph.edges if dst == name)
        ]
        if not ready:
            raise NIRExportError(f"the graph has a cycle through {', '.join(sorted(remaining))}")
        order += ready
        remaining = [name for name in remaining if name not in ready]
    return order
