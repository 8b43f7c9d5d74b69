"""The Lava network a NIR graph becomes, as plain data: what to build, not how to run it.

`graph.lower` writes a `LavaPlan` in Lava's floating-point units; `quantize.quantize_for_loihi`
rewrites it in Loihi's integers; `lava_network.run_plan` turns either into Lava processes. No
module here imports Lava, so the plan can be built, checked and priced (energy model) anywhere.

Time. Every layer is one Lava `LIFReset` fed by one `Dense`/`Sparse` process per source, and a
Dense hop delivers at step s what its source sent at step s-1. A layer's `latency` is how many
steps its Lava output lags the reference (ash_neuro/nir_export/reference.py: no delay inside
a step): its spikes for step t of a sample stream out at global step `sample * T + t +
latency`. A recurrent connection (a layer onto itself) is one such hop, so it delivers the
spikes of step t at step t + 1, as the reference's cycles do. Samples are streamed back to
back; each layer clears its state at the first step of its own window, so sample boundaries
pipeline through the network and a run takes `samples * T + depth` steps.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from ash_neuro.errors import AshError

# Source name of a connection fed by a constant 1 every step (a current into Lava's `u`).
CONSTANT = "<constant>"
MODES = ("floating_pt", "fixed_pt")
# fixed_pt's integer profiles (quantize.PROFILES): Loihi's own, or what lava-dl's netx holds
QUANTISE_PROFILES = ("loihi", "netx")

Matrix = np.ndarray | sparse.csr_matrix


def matrix_values(matrix: Matrix) -> np.ndarray:
    """The stored entries of a dense or sparse connection matrix."""
    return matrix.data if sparse.issparse(matrix) else np.asarray(matrix)


class HarnessError(AshError):
    """A graph, parameter or data file the Lava harness cannot run; one line naming the cause."""


@dataclass(frozen=True)
class Connection:
    """Synapses from `source` (the graph input, a layer, or CONSTANT) into a layer.

    `weight` is (post neurons, pre neurons), flattened in C order, already multiplied by the
    post layer's input gain; dense weights become a Lava `Dense`, sparse ones a `Sparse`.
    `weight_exp` is Loihi's shared weight exponent (fixed_pt only; effective weight
    `weight * 2**weight_exp`). `clear_at_window_start`: what the hop would deliver at the
    first step of the layer's window belongs to the previous sample (a recurrent connection's
    last spikes, or any input of a layer whose input lags a step), so it is zeroed there.
    """

    source: str
    weight: Matrix
    weight_exp: int = 0
    clear_at_window_start: bool = False


@dataclass(frozen=True)
class NeuronLayer:
    """One NIR neuron node as a Lava LIF population, in Lava's parameters (see mapping.py).

    In floating_pt units the threshold is 1 and potentials are measured from v_reset in units
    of (v_threshold - v_reset); fixed_pt holds Loihi's integers (`bias_exp` per neuron).
    `du`, `dv`: the decays, one per neuron (Lava's own LIF takes one per population; see
    `uniform_decays`). `v_rest`: the membrane every sample starts from (its rest, see
    mapping.py), per neuron. `spiking` False: a readout (LI, CubaLI, I), whose voltage is
    the output instead of spikes. `recurrent`: the layer has a connection from itself.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    du: np.ndarray
    dv: np.ndarray
    vth: float
    bias_mant: np.ndarray
    inputs: tuple[Connection, ...]
    latency: int
    bias_exp: np.ndarray | int = 0
    v_rest: np.ndarray | float = 0.0
    spiking: bool = True

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def uniform_decays(self) -> bool:
        """One du and one dv for the whole population (what Lava's own LIF holds)."""
        du, dv = np.ravel(self.du), np.ravel(self.dv)
        return bool(np.all(du == du[0]) and np.all(dv == dv[0]))

    @property
    def recurrent(self) -> bool:
        return any(conn.source == self.name for conn in self.inputs)


@dataclass(frozen=True)
class LavaPlan:
    """A NIR graph as Lava populations in topological order, one input and one output.

    `input_scale`: fixed_pt multiplies (and rounds) the input stream by it to make graded
    integer spikes, clipped to +-`input_limit` (inputs beyond the calibrated range saturate);
    None in floating_pt. `scheme`: the discretisation it was lowered with (mapping.py).
    """

    input_name: str
    input_shape: tuple[int, ...]
    output_layer: str
    output_shape: tuple[int, ...]
    layers: tuple[NeuronLayer, ...]
    dt: float
    mode: str = "floating_pt"
    scheme: str = "explicit"
    input_scale: float | None = None
    input_limit: float | None = None

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def depth(self) -> int:
        """Extra steps the run needs after the last sample for every layer to finish it."""
        return max(layer.latency for layer in self.layers)

    @property
    def output_spiking(self) -> bool:
        """The output is spikes; else the voltage of a readout (LI, CubaLI, I)."""
        return self.layer(self.output_layer).spiking

    def layer(self, name: str) -> NeuronLayer:
        return next(layer for layer in self.layers if layer.name == name)

    def encode_input(self, currents: np.ndarray) -> np.ndarray:
        """The stream the Lava input process sends: graded integers in fixed_pt."""
        if self.input_scale is None:
            return currents
        encoded = np.rint(currents * self.input_scale)
        if self.input_limit is None:
            return encoded
        return np.clip(encoded, -self.input_limit, self.input_limit)

    def replace(self, **changes) -> LavaPlan:
        return dataclasses.replace(self, **changes)


def loihi2_problems(plan: LavaPlan) -> list[str]:
    """What keeps `plan` off Loihi 2 through Lava's own processes (`--backend loihi2`): each
    of these runs only on the simulator, through the models lava_network.py adds to Lava's."""
    problems = []
    if plan.mode != "fixed_pt":
        problems.append("the chip runs integers: use --mode fixed_pt")
    for layer in plan.layers:
        where = f"node '{layer.name}' ({layer.kind})"
        if not layer.spiking:
            problems.append(f"{where} is a readout, whose voltage our simulator model streams out")
        if not layer.uniform_decays:
            problems.append(f"{where} has per-neuron decays; Loihi 2's LIF shares them")
        if np.any(np.asarray(layer.v_rest) != 0):
            problems.append(
                f"{where} starts each sample at rest v_leak != v_reset; Loihi 2's LIFReset "
                "restarts at 0"
            )
        if any(conn.clear_at_window_start for conn in layer.inputs):
            problems.append(
                f"{where} needs its input cleared at each sample's start (a recurrent "
                "connection, or an input lagging a step), which is a host-side process here"
            )
    return problems
