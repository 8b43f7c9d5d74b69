"""Our additions to lava-nc's processes and process models (lava-nc 0.10), one package alone.

A package of its own because Lava's compiler, looking for the models of a process, imports
every module in the directory of the process's module as a stand-alone module (
`lava.magma.compiler.compiler_graphs.ProcGroupDiGraphs._find_proc_models`): beside hardware/'s
other modules that fails (loudly) for every dataclass module; here there is nothing else.
Lava and NumPy only.

- `_RestartFromRest`: LIFReset's models, restarting each sample's window at the population's
  rest potential (`proc_params["v_rest"]`) instead of 0;
- `LIFResetPerNeuron`: LIFReset with one du and one dv per neuron, and its models;
- `VoltageReadout`: a per-neuron LIFReset that never spikes and sends its voltage (LI, CubaLI,
  I), and its models;
- `PyLoihiInjectorModelFixed`: the injector sending int32, for fixed_pt Dense.

Per-neuron decays. Lava's LIF declares du and dv as shape-(1,) Vars and its models type them as
a Python float (floating_pt) or a 12-bit int (fixed_pt), so a population holds one decay each.
The models' arithmetic is elementwise (`u * (1 - du)`; `u * (4096 - du - 1) >> 12`), so
`LIFResetPerNeuron` declares them per neuron and its models type them as arrays; everything
else is Lava's code. This keeps one Lava process per NIR node where splitting a population
into sub-populations of equal decays would need one LIF, one synapse process per source and one
extractor per distinct decay (learned decays are all distinct: hundreds of OS processes for a
layer of a hundred neurons in Lava's simulator). On the chip Lava's own LIF process runs, with
one du and one dv per population, so `--backend loihi2` refuses such layers.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.model.py.ports import PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.variable import Var
from lava.proc.io.injector import PyLoihiInjectorModel
from lava.proc.lif.models import PyLifResetModelBitAcc, PyLifResetModelFloat
from lava.proc.lif.process import LIFReset


class PyLoihiInjectorModelFixed(PyLoihiInjectorModel):
    """Lava's injector, sending int32 like the fixed-point RingBuffer (for fixed_pt Dense)."""

    out_port: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)


class _RestartFromRest:
    """LIFReset's model, starting each window from the population's rest potential instead of
    0: Lava's `run_spk` zeroes u and v at the window's first step and then calls
    `subthr_dynamics`, which here first sets v to `proc_params["v_rest"]`."""

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.v_rest = proc_params["v_rest"]

    def subthr_dynamics(self, activation_in: np.ndarray) -> None:
        if self.time_step % self.reset_interval == self.reset_offset:
            self.v[:] = self.v_rest
        super().subthr_dynamics(activation_in)


class PyLifFromRestModelFloat(_RestartFromRest, PyLifResetModelFloat):
    """floating_pt: v_rest in units of the reset-to-threshold distance."""


class PyLifFromRestModelFixed(_RestartFromRest, PyLifResetModelBitAcc):
    """fixed_pt: v_rest in Loihi's integer units of v (quantize.py)."""


class LIFResetPerNeuron(LIFReset):
    """LIFReset whose du and dv hold one value per neuron (Lava's hold one per population)."""

    def __init__(self, *, shape, du: np.ndarray, dv: np.ndarray, **kwargs) -> None:
        super().__init__(shape=shape, **kwargs)
        self.du = Var(shape=shape, init=np.asarray(du).reshape(shape))
        self.dv = Var(shape=shape, init=np.asarray(dv).reshape(shape))


class VoltageReadout(LIFResetPerNeuron):
    """A LIF population that never spikes and sends its voltage every step (LI, CubaLI, I)."""


# Lava's compiler finds a process's models by `type(proc) is model.implements_process`, and
# its @implements refuses to re-target a subclass of a model, so the attribute is set directly.


class PyLifPerNeuronModelFloat(PyLifFromRestModelFloat):
    implements_process = LIFResetPerNeuron
    du: np.ndarray = LavaPyType(np.ndarray, float)
    dv: np.ndarray = LavaPyType(np.ndarray, float)


class PyLifPerNeuronModelFixed(PyLifFromRestModelFixed):
    implements_process = LIFResetPerNeuron
    du: np.ndarray = LavaPyType(np.ndarray, np.uint16, precision=12)
    dv: np.ndarray = LavaPyType(np.ndarray, np.uint16, precision=12)


class _SendVoltage:
    """The voltage after the step leaves through s_out; nothing is compared or reset."""

    def spiking_activation(self) -> np.ndarray:
        return self.v.copy()

    def reset_voltage(self, spike_vector: np.ndarray) -> None:
        pass


class PyVoltageReadoutModelFloat(_SendVoltage, PyLifPerNeuronModelFloat):
    implements_process = VoltageReadout


class PyVoltageReadoutModelFixed(_SendVoltage, PyLifPerNeuronModelFixed):
    implements_process = VoltageReadout
