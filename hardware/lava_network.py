"""A `LavaPlan` as lava-nc processes on the Loihi 2 simulator: build once, stream every sample.

Processes (all from lava-nc 0.10):
- `io.injector.Injector`: the host sends one input vector per step (graded: the first hop has
  `num_message_bits` > 0, since Lava's Dense otherwise casts its input to bool);
- `dense.Dense` / `sparse.Sparse`: one per connection, `weight_exp` for fixed_pt;
- `lif.LIFReset`: one per layer, reset every T steps at the first step of its own window, to
  its rest potential (`v_rest`; Lava's own models reset to 0, so `_RestartFromRest` extends
  them);
- `io.reset.Reset`: zeroes the pending activation of a CubaLIF's inputs before its window;
- `io.source.RingBuffer` of ones: the constant input of CubaLIF affine biases;
- `io.extractor.Extractor`: one per layer, hands every step's spikes back to the host, which
  counts activity and keeps the output layer's spikes, dropping each layer's leading latency.
`Loihi2SimCfg(select_tag=mode)` picks float or bit-accurate models. Injector and Extractor
have untagged models only, so they are named in `exception_proc_model_map`, as is LIFReset's
model that restarts from rest; in fixed_pt the injector sends int32, as Lava's fixed-point
RingBuffer does.

Reading Lava Vars from the host is per element (~25 us each) and rebuilding per sample costs
a compile, so outputs stream through Extractors while the host keeps `LAG` steps of input
ahead of the network.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass

import numpy as np
from lava.magma.core.model.py.ports import PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.dense.process import Dense
from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
from lava.proc.io.injector import Injector, PyLoihiInjectorModel
from lava.proc.io.reset import Reset
from lava.proc.io.source import RingBuffer
from lava.proc.lif.models import PyLifResetModelBitAcc, PyLifResetModelFloat
from lava.proc.lif.process import LIFReset
from lava.proc.sparse.process import Sparse
from scipy import sparse

from hardware.plan import CONSTANT, LavaPlan, NeuronLayer
from hardware.supervise import descendants, kill_processes

LAG = 32
BUFFER = 2 * LAG
GRADED_MESSAGE_BITS = 24


class LavaProcessFailed(RuntimeError):
    """A Lava process ended in the middle of a run (its exception, when Lava kept one)."""


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


@dataclass(frozen=True)
class LavaRun:
    """Spikes of the output layer (samples, T, *output_shape), spike counts per layer and,
    when recorded, every layer's spike trains (samples, T, *layer_shape)."""

    output: np.ndarray
    activity: dict[str, np.ndarray]
    build_s: float
    run_s: float
    steps: int
    spikes: dict[str, np.ndarray] | None = None

    @property
    def ms_per_step(self) -> float:
        return 1000 * self.run_s / self.steps


def run_plan(plan: LavaPlan, inputs: np.ndarray, record_spikes: bool = False) -> LavaRun:
    """Run `inputs` (samples, T, *plan.input_shape), latency removed, from rest every sample;
    `record_spikes` keeps every layer's spike trains, not only the output layer's.

    On any failure the run's processes are killed (and their shared memory unlinked), since
    Lava's `stop()` waits for processes that may never answer; LavaProcessFailed when one of
    them died.
    """
    samples, steps_per_sample = inputs.shape[:2]
    stream = plan.encode_input(inputs.reshape(samples * steps_per_sample, plan.input_size))
    total = samples * steps_per_sample + plan.depth
    started = time.perf_counter()
    network = _Network(plan, steps_per_sample)
    recorder = _Recorder(plan, samples, steps_per_sample, record_spikes)
    completed = False
    try:
        network.injector.create_runtime(run_cfg=_run_config(plan.mode))
        built = time.perf_counter()
        watch = _Watch(network.injector)
        network.injector.run(condition=RunSteps(num_steps=total, blocking=False))
        zeros = np.zeros(plan.input_size)
        for step in range(total + LAG):
            if step < total:
                network.injector.send(stream[step] if step < len(stream) else zeros)
            if step >= LAG:
                for name, extractor in network.extractors.items():
                    recorder.record(name, step - LAG, watch.receive(extractor))
        network.injector.wait()
        finished = time.perf_counter()
        completed = True
    finally:
        if completed:
            network.injector.stop()
        else:
            kill_processes(lambda: descendants(os.getpid()))
    return LavaRun(
        output=recorder.output.reshape(samples, steps_per_sample, *plan.output_shape),
        activity={
            layer.name: recorder.counts[layer.name].reshape(samples, *layer.shape)
            for layer in plan.layers
        },
        build_s=built - started,
        run_s=finished - built,
        steps=total,
        spikes=None
        if recorder.trains is None
        else {
            layer.name: recorder.trains[layer.name].reshape(samples, steps_per_sample, *layer.shape)
            for layer in plan.layers
        },
    )


class _Watch:
    """Receives from extractors without blocking forever when a Lava process has died.

    A process model that raises ends its OS process and the network stops stepping, so a
    blocking receive would wait for ever; while waiting, count Lava's worker processes.
    """

    POLL_S = 1e-4
    CHECK_S = 0.05

    def __init__(self, injector: Injector) -> None:
        self.runtime = injector.runtime
        self.workers = len(multiprocessing.active_children())

    def receive(self, extractor: Extractor) -> np.ndarray:
        port = extractor.out_port.external_pipe_csp_recv_port
        checked = time.monotonic()
        while not port.probe():
            if time.monotonic() - checked > self.CHECK_S:
                if len(multiprocessing.active_children()) < self.workers:
                    raise LavaProcessFailed(self._error())
                checked = time.monotonic()
            time.sleep(self.POLL_S)
        return extractor.receive()

    def _error(self) -> str:
        # lava-nc 0.10 keeps each process's exception on its actor (runtime internals).
        for actor in self.runtime._messaging_infrastructure.actors:
            if actor.exception:
                error = actor.exception[0]
                return f"{type(error).__name__}: {' '.join(str(error).split())}"
        return "a Lava process exited in the middle of the run"


class _Network:
    """The Lava processes of a plan, connected; Lava finds them all from `injector`."""

    def __init__(self, plan: LavaPlan, period: int) -> None:
        self.injector = Injector(shape=(plan.input_size,), buffer_size=BUFFER)
        outports = {plan.input_name: self.injector.out_port}
        self.extractors: dict[str, Extractor] = {}
        for layer in plan.layers:
            neurons = LIFReset(
                shape=(layer.size,),
                du=layer.du,
                dv=layer.dv,
                vth=layer.vth,
                bias_mant=layer.bias_mant,
                bias_exp=layer.bias_exp,
                reset_interval=period,
                reset_offset=(layer.latency + 1) % period,
                name=layer.name,
            )
            neurons.proc_params["v_rest"] = np.broadcast_to(layer.v_rest, (layer.size,)).copy()
            for conn in layer.inputs:
                if conn.source == CONSTANT and CONSTANT not in outports:
                    outports[CONSTANT] = RingBuffer(data=np.ones((1, 1))).s_out
                synapses = _synapses(conn, graded=conn.source == plan.input_name)
                outports[conn.source].connect(synapses.s_in)
                synapses.a_out.connect(neurons.a_in)
                if layer.clear_input_at_window_start:
                    _clear_before_window(synapses, layer, period)
            outports[layer.name] = neurons.s_out
            extractor = Extractor(shape=(layer.size,), buffer_size=BUFFER)
            neurons.s_out.connect(extractor.in_port)
            self.extractors[layer.name] = extractor


def _synapses(conn, graded: bool):
    kwargs = dict(
        weights=conn.weight,
        weight_exp=conn.weight_exp,
        num_message_bits=GRADED_MESSAGE_BITS if graded else 0,
    )
    if sparse.issparse(conn.weight):
        return Sparse(**kwargs)
    return Dense(**kwargs)


def _clear_before_window(synapses, layer: NeuronLayer, period: int) -> None:
    """Zero the activation a hop would deliver at the layer's window start (end of step s0-1).

    Reset acts after the step where `(time_step - 1) % period == offset`; the window starts at
    step s0 = k * period + latency + 1.
    """
    reset = Reset(reset_value=0, interval=period, offset=(layer.latency - 1) % period)
    reset.connect_var(synapses.a_buff)


def _run_config(mode: str) -> Loihi2SimCfg:
    fixed = mode == "fixed_pt"
    return Loihi2SimCfg(
        select_tag=mode,
        exception_proc_model_map={
            Injector: PyLoihiInjectorModelFixed if fixed else PyLoihiInjectorModel,
            Extractor: PyLoihiExtractorModel,
            LIFReset: PyLifFromRestModelFixed if fixed else PyLifFromRestModelFloat,
        },
    )


class _Recorder:
    """Assigns each streamed step to (sample, t) per layer, dropping the layer's latency."""

    def __init__(
        self, plan: LavaPlan, samples: int, steps_per_sample: int, keep_trains: bool = False
    ) -> None:
        self.steps_per_sample = steps_per_sample
        self.samples = samples
        self.latency = {layer.name: layer.latency for layer in plan.layers}
        self.output_layer = plan.output_layer
        self.counts = {layer.name: np.zeros((samples, layer.size)) for layer in plan.layers}
        size = plan.layer(plan.output_layer).size
        self.output = np.zeros((samples * steps_per_sample, size), dtype=np.float32)
        steps = samples * steps_per_sample
        self.trains = (
            {layer.name: np.zeros((steps, layer.size), np.float32) for layer in plan.layers}
            if keep_trains
            else None
        )

    def record(self, layer: str, step: int, spikes: np.ndarray) -> None:
        index = step - self.latency[layer]
        if not 0 <= index < self.samples * self.steps_per_sample:
            return
        self.counts[layer][index // self.steps_per_sample] += spikes
        if layer == self.output_layer:
            self.output[index] = spikes
        if self.trains is not None:
            self.trains[layer][index] = spikes
