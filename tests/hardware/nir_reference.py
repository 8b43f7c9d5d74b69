"""What a NIR graph means, in NumPy: the oracle the Lava side is tested against.

Written from NIR's documented equations, not from hardware/: forward Euler with step dt, one
input step per time step, no delay inside a step (a spike reaches the next layer in the step
it is emitted), every sample from rest (v = v_reset, i = 0), float64.

    LIF      v += dt/tau * ((v_leak - v) + r I)
    IF       v += dt * r I
    CubaLIF  v += dt/tau_mem * ((v_leak - v) + r i);  i += dt/tau_syn * (-i + w_in I)
             (both from the state before the step: explicit Euler)
    spike where v > v_threshold, then v = v_reset there.
"""

from __future__ import annotations

from collections import defaultdict

import nir
import numpy as np


def simulate(graph: nir.NIRGraph, inputs: np.ndarray, dt: float) -> dict[str, np.ndarray]:
    """Spikes of every neuron node and of the Output, each (samples, T, *shape)."""
    order = _order(graph)
    preds = defaultdict(list)
    for src, dst in graph.edges:
        preds[dst].append(src)
    samples = []
    for sample in inputs:
        state: dict[str, dict[str, np.ndarray]] = {}
        record = defaultdict(list)
        for x in sample:
            values: dict[str, np.ndarray] = {}
            for name in order:
                node = graph.nodes[name]
                if isinstance(node, nir.Input):
                    values[name] = np.asarray(x, dtype=np.float64)
                    continue
                current = sum(values[p] for p in preds[name])
                values[name] = _step(node, current, state.setdefault(name, {}), dt)
                if isinstance(node, nir.LIF | nir.IF | nir.CubaLIF | nir.Output):
                    record[name].append(values[name])
        samples.append({name: np.stack(steps) for name, steps in record.items()})
    return {name: np.stack([s[name] for s in samples]) for name in samples[0]}


def _step(node, current: np.ndarray, state: dict, dt: float) -> np.ndarray:
    if isinstance(node, nir.Output):
        return current
    if isinstance(node, nir.Affine):
        return node.weight @ current.reshape(-1) + node.bias
    if isinstance(node, nir.Linear):
        return node.weight @ current.reshape(-1)
    if isinstance(node, nir.Flatten):
        return current.reshape(-1)
    if isinstance(node, nir.Conv2d):
        return _conv(current, node.weight, node.stride, node.padding) + node.bias[:, None, None]
    if isinstance(node, nir.SumPool2d):
        channels = current.shape[0]
        kernel = np.ones((channels, 1, *np.atleast_1d(node.kernel_size)))
        return _conv(current, kernel, node.stride, node.padding, groups=channels)
    shape = current.shape
    v = state.get("v", np.broadcast_to(node.v_reset, shape).astype(np.float64))
    if isinstance(node, nir.LIF):
        v = v + dt / node.tau * ((node.v_leak - v) + node.r * current)
    elif isinstance(node, nir.IF):
        v = v + dt * node.r * current
    else:
        i = state.get("i", np.zeros(shape))
        v = v + dt / node.tau_mem * ((node.v_leak - v) + node.r * i)
        state["i"] = i + dt / node.tau_syn * (-i + node.w_in * current)
    spikes = v > node.v_threshold
    state["v"] = np.where(spikes, node.v_reset, v)
    return spikes.astype(np.float64)


def _conv(x, weight, stride, padding, groups: int = 1) -> np.ndarray:
    """PyTorch-style cross-correlation of x (C, H, W) with weight (C_out, C/groups, kh, kw)."""
    sy, sx = np.broadcast_to(stride, (2,))
    py, px = np.broadcast_to(padding, (2,))
    x = np.pad(x, ((0, 0), (py, py), (px, px)))
    out_channels, group_in, kh, kw = weight.shape
    out_h = (x.shape[1] - kh) // sy + 1
    out_w = (x.shape[2] - kw) // sx + 1
    out = np.zeros((out_channels, out_h, out_w))
    per_group = out_channels // groups
    for o in range(out_channels):
        channels = x[(o // per_group) * group_in : (o // per_group + 1) * group_in]
        for y in range(out_h):
            for z in range(out_w):
                patch = channels[:, y * sy : y * sy + kh, z * sx : z * sx + kw]
                out[o, y, z] = np.sum(patch * weight[o])
    return out


def _order(graph: nir.NIRGraph) -> list[str]:
    remaining = dict.fromkeys(graph.nodes)
    order = []
    while remaining:
        for name in list(remaining):
            if all(src in order for src, dst in graph.edges if dst == name):
                order.append(name)
                del remaining[name]
    return order
