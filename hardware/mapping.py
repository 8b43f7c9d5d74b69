"""NIR neuron nodes -> Lava LIF parameters: the one place where neuron dynamics are mapped.

Lava's LIF process (`lava.proc.lif`, floating_pt model) does, every time step s:

    u[s] = u[s-1] * (1 - du) + a_in[s]          a_in: summed weighted input of this step
    v[s] = v[s-1] * (1 - dv) + u[s] + bias
    spike where v[s] > vth, then v[s] = 0 there

NIR nodes are continuous-time. We discretise them with forward Euler (step dt, one input step
per time step, zero-delay inside a step) and measure the membrane from its reset value in
units of the reset-to-threshold distance D = v_threshold - v_reset:

    x = (v - v_reset) / D,        spike when x > 1,  reset to x = 0

which gives every population Lava's reset to 0 and one shared threshold 1, while NIR's
v_reset and v_threshold may differ per neuron. With a = dt / tau:

LIF      tau dv/dt = (v_leak - v) + r I
         x[t+1] = x[t] (1 - a) + (a r / D) I[t] + a (v_leak - v_reset) / D
    ->   du = 1 (u holds only this step's input), dv = a, input gain a r / D,
         bias a (v_leak - v_reset) / D.
IF       dv/dt = r I
         x[t+1] = x[t] + (dt r / D) I[t]
    ->   du = 1, dv = 0, input gain dt r / D, bias 0.
CubaLIF  tau_syn di/dt = -i + w_in I,   tau_mem dv/dt = (v_leak - v) + r i
         i[t+1] = i[t] (1 - a_syn) + a_syn w_in I[t]
         x[t+1] = x[t] (1 - a_mem) + (a_mem r / D) i[t] + a_mem (v_leak - v_reset) / D
         (explicit Euler: the voltage step uses the current *before* this step's input).
    ->   u := (a_mem r / D) i, so du = a_syn, dv = a_mem, input gain a_mem a_syn r w_in / D,
         bias a_mem (v_leak - v_reset) / D; and since Lava adds u[s] (this step's current)
         to v[s], the layer must receive I[t-1] at the step where it emits spikes for t: its
         input lags one step (`input_lag`), which is exactly the delay of Lava's Dense hop.
An affine bias b in front of a neuron is part of I: it adds gain * b to a LIF's or IF's Lava
bias (which enters v); a CubaLIF's b enters its current, so it arrives as a constant input
(`bias_enters_current`).

Every sample starts from rest: i = 0 (u = 0) and v = v_leak, i.e. x = (v_leak - v_reset) / D
(`rest`); an IF, which has no leak, at v = v_reset (x = 0). NIR leaves the initial state open;
rest is where LIF's equation settles without input and where Norse's cells start, so a graph
exported from Norse runs here as it ran there (the NumPy reference,
ash_neuro/nir_export/reference.py, starts there too). Lava's LIFReset zeroes u and v at the
start of each sample's window; lava_network.py's models then set v to `rest`.
"""

from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np

from hardware.plan import HarnessError

NEURON_TYPES = (nir.LIF, nir.CubaLIF, nir.IF)


@dataclass(frozen=True)
class NeuronMapping:
    """Lava parameters of one NIR neuron node (flattened, one entry per neuron); `rest` is x
    at the start of every sample."""

    kind: str
    du: float
    dv: float
    gain: np.ndarray
    bias: np.ndarray
    bias_enters_current: bool
    input_lag: int
    rest: np.ndarray


def map_neuron(name: str, node: nir.NIRNode, shape: tuple[int, ...], dt: float) -> NeuronMapping:
    """Discretise NIR neuron `node` (named `name`, input shape `shape`) for Lava's LIF."""
    kind = type(node).__name__
    params = _Params(name, kind, shape)
    v_reset = params.get("v_reset", node.v_reset)
    span = params.get("v_threshold", node.v_threshold) - v_reset
    if np.any(span <= 0):
        raise HarnessError(f"node '{name}' ({kind}): v_threshold must exceed v_reset")
    if isinstance(node, nir.IF):
        r = params.get("r", node.r)
        zero = np.zeros_like(span)
        return NeuronMapping(kind, 1.0, 0.0, dt * r / span, zero, False, 0, zero)
    if isinstance(node, nir.LIF):
        a = params.decay("tau", node.tau, dt)
        r = params.get("r", node.r)
        v_leak = params.get("v_leak", node.v_leak)
        leak = a * (v_leak - v_reset) / span
        return NeuronMapping(kind, 1.0, a, a * r / span, leak, False, 0, (v_leak - v_reset) / span)
    a_mem = params.decay("tau_mem", node.tau_mem, dt)
    a_syn = params.decay("tau_syn", node.tau_syn, dt)
    r = params.get("r", node.r)
    w_in = params.get("w_in", node.w_in)
    v_leak = params.get("v_leak", node.v_leak)
    gain = a_mem * a_syn * r * w_in / span
    leak = a_mem * (v_leak - v_reset) / span
    return NeuronMapping(kind, a_syn, a_mem, gain, leak, True, 1, (v_leak - v_reset) / span)


class _Params:
    """Reads a node's per-neuron parameters, broadcast to its input and checked."""

    def __init__(self, name: str, kind: str, shape: tuple[int, ...]) -> None:
        self.name, self.kind, self.shape = name, kind, shape

    def get(self, field: str, value) -> np.ndarray:
        array = np.asarray(value, dtype=np.float64)
        if array.size not in (1, int(np.prod(self.shape))):
            raise HarnessError(
                f"node '{self.name}' ({self.kind}): {field} has shape {array.shape} but the "
                f"node's input has shape {self.shape}"
            )
        if not np.all(np.isfinite(array)):
            raise HarnessError(f"node '{self.name}' ({self.kind}): {field} is not finite")
        return np.broadcast_to(array.reshape(-1), (int(np.prod(self.shape)),)).copy()

    def decay(self, field: str, tau, dt: float) -> float:
        """dt / tau, which Lava shares across a population and forward Euler needs <= 1."""
        tau = self.get(field, tau)
        if np.any(tau <= 0):
            raise HarnessError(f"node '{self.name}' ({self.kind}): {field} must be positive")
        if np.any(tau != tau[0]):
            raise HarnessError(
                f"node '{self.name}' ({self.kind}): {field} varies across neurons "
                f"({tau.min():g}..{tau.max():g} s); Lava's LIF has one decay per population"
            )
        a = dt / float(tau[0])
        if a > 1:
            raise HarnessError(
                f"node '{self.name}' ({self.kind}): dt = {dt:g} s exceeds {field} = "
                f"{tau[0]:g} s; forward Euler needs dt <= {field}"
            )
        return a
