"""NIR neuron nodes -> Lava LIF parameters: the one place where neuron dynamics are mapped.

Lava's LIF process (`lava.proc.lif`, floating_pt model) does, every time step s:

    u[s] = u[s-1] * (1 - du) + a_in[s]          a_in: summed weighted input of this step
    v[s] = v[s-1] * (1 - dv) + u[s] + bias
    spike where v[s] > vth, then v[s] = 0 there

NIR nodes are continuous-time. We discretise them with step dt, one input step per time step,
zero delay inside a step (the equations of every scheme are in
ash_neuro/nir_export/reference.py), and measure the membrane from its reset value in units of
the reset-to-threshold distance D = v_threshold - v_reset:

    x = (v - v_reset) / D,        spike when x > 1,  reset to x = 0

which gives every population Lava's reset to 0 and one shared threshold 1, while NIR's
v_reset and v_threshold may differ per neuron. With a = dt / tau (per neuron):

LIF      tau dv/dt = (v_leak - v) + r I
         x[t+1] = x[t] (1 - a) + (a r / D) I[t] + a (v_leak - v_reset) / D
    ->   du = 1 (u holds only this step's input), dv = a, input gain a r / D,
         bias a (v_leak - v_reset) / D.
IF       dv/dt = r I
         x[t+1] = x[t] + (dt r / D) I[t]
    ->   du = 1, dv = 0, input gain dt r / D, bias 0.
CubaLIF  tau_syn di/dt = -i + w_in I,   tau_mem dv/dt = (v_leak - v) + r i
         i[t+1] = i[t] (1 - a_syn) + a_syn w_in I[t]
         u := (a_mem r / D) i, so du = a_syn, dv = a_mem, input gain a_mem a_syn r w_in / D,
         bias a_mem (v_leak - v_reset) / D. Since Lava adds u[s] (this step's current) to
         v[s], Lava's own order is the semi-implicit scheme (`--scheme semi-implicit`:
         snnTorch's Synaptic, Norse's LIFCell, Loihi's CUBA): the current arrives in the step
         of its input. Explicit Euler (`--scheme explicit`, the default) has the voltage step
         use the current *before* this step's input,
         x[t+1] = x[t] (1 - a_mem) + (a_mem r / D) i[t] + ...,
         so the layer must receive I[t-1] at the step where it emits spikes for t: its input
         lags one step (`input_lag`), which is exactly the delay of Lava's Dense hop.
Readouts (no threshold, the membrane voltage is their output; D = 1 and v_reset = 0, so x = v):
LI       as LIF; CubaLI as CubaLIF (same two schemes); I (NIR's Integrator, dv/dt = r I) as IF.
An affine bias b in front of a neuron is part of I: it adds gain * b to a LIF's, LI's, IF's
or I's Lava bias (which enters v); a CubaLIF's or CubaLI's b enters its current, so it arrives
as a constant input (`bias_enters_current`).

Per-neuron decays: du and dv are arrays, one entry per neuron. Lava's own LIF shares one
du/dv per population; lava_network.py runs a population whose decays differ on a LIF process
with per-neuron decay Vars (its models are Lava's, elementwise), see there.

Every sample starts from rest: i = 0 (u = 0) and v = v_leak, i.e. x = (v_leak - v_reset) / D
(`rest`); an IF, which has no leak, at v = v_reset (x = 0), an I at v = 0. NIR leaves the
initial state open; rest is where LIF's equation settles without input and where Norse's cells
start, so a graph exported from Norse runs here as it ran there (the NumPy reference,
ash_neuro/nir_export/reference.py, starts there too). Lava's LIFReset zeroes u and v at the
start of each sample's window; lava_network.py's models then set v to `rest`.
"""

from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np

from ash_neuro.nir_export.reference import SCHEMES
from hardware.plan import HarnessError

SPIKING_TYPES = (nir.LIF, nir.CubaLIF, nir.IF)
READOUT_TYPES = (nir.LI, nir.CubaLI, nir.I)
NEURON_TYPES = SPIKING_TYPES + READOUT_TYPES


@dataclass(frozen=True)
class NeuronMapping:
    """Lava parameters of one NIR neuron node (flattened, one entry per neuron); `rest` is x
    at the start of every sample; a readout (`spiking` False) has x = v."""

    kind: str
    du: np.ndarray
    dv: np.ndarray
    gain: np.ndarray
    bias: np.ndarray
    bias_enters_current: bool
    input_lag: int
    rest: np.ndarray
    spiking: bool = True


def map_neuron(
    name: str, node: nir.NIRNode, shape: tuple[int, ...], dt: float, scheme: str = "explicit"
) -> NeuronMapping:
    """Discretise NIR neuron `node` (named `name`, input shape `shape`) for Lava's LIF."""
    if scheme not in SCHEMES:
        raise HarnessError(f"unknown scheme {scheme!r}; use {' or '.join(SCHEMES)}")
    kind = type(node).__name__
    params = _Params(name, kind, shape)
    spiking = isinstance(node, SPIKING_TYPES)
    if spiking:
        v_reset = params.get("v_reset", node.v_reset)
        span = params.get("v_threshold", node.v_threshold) - v_reset
        if np.any(span <= 0):
            raise HarnessError(f"node '{name}' ({kind}): v_threshold must exceed v_reset")
    else:
        v_reset, span = params.zeros(), params.ones()
    one, zero = params.ones(), params.zeros()
    if isinstance(node, nir.IF | nir.I):
        r = params.get("r", node.r)
        return NeuronMapping(kind, one, zero, dt * r / span, zero, False, 0, zero, spiking)
    v_leak = params.get("v_leak", node.v_leak)
    rest = (v_leak - v_reset) / span
    if isinstance(node, nir.LIF | nir.LI):
        a = params.decay("tau", node.tau, dt)
        r = params.get("r", node.r)
        return NeuronMapping(kind, one, a, a * r / span, a * rest, False, 0, rest, spiking)
    a_mem = params.decay("tau_mem", node.tau_mem, dt)
    a_syn = params.decay("tau_syn", node.tau_syn, dt)
    r = params.get("r", node.r)
    w_in = params.get("w_in", node.w_in)
    gain = a_mem * a_syn * r * w_in / span
    lag = 1 if scheme == "explicit" else 0
    return NeuronMapping(kind, a_syn, a_mem, gain, a_mem * rest, True, lag, rest, spiking)


class _Params:
    """Reads a node's per-neuron parameters, broadcast to its input and checked."""

    def __init__(self, name: str, kind: str, shape: tuple[int, ...]) -> None:
        self.name, self.kind, self.shape = name, kind, shape
        self.size = int(np.prod(shape))

    def get(self, field: str, value) -> np.ndarray:
        array = np.asarray(value, dtype=np.float64)
        if array.size not in (1, self.size):
            raise HarnessError(
                f"node '{self.name}' ({self.kind}): {field} has shape {array.shape} but the "
                f"node's input has shape {self.shape}"
            )
        if not np.all(np.isfinite(array)):
            raise HarnessError(f"node '{self.name}' ({self.kind}): {field} is not finite")
        return np.broadcast_to(array.reshape(-1), (self.size,)).copy()

    def ones(self) -> np.ndarray:
        return np.ones(self.size)

    def zeros(self) -> np.ndarray:
        return np.zeros(self.size)

    def decay(self, field: str, tau, dt: float) -> np.ndarray:
        """dt / tau per neuron, which the explicit and semi-implicit steps need <= 1."""
        tau = self.get(field, tau)
        if np.any(tau <= 0):
            raise HarnessError(f"node '{self.name}' ({self.kind}): {field} must be positive")
        if np.any(dt > tau):
            raise HarnessError(
                f"node '{self.name}' ({self.kind}): dt = {dt:g} s exceeds {field} = "
                f"{tau.min():g} s; the Euler step needs dt <= {field}"
            )
        return dt / tau
