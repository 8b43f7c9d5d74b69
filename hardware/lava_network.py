"""A `LavaPlan` as lava-nc processes on the Loihi 2 simulator: build once, stream every sample.

Processes (all from lava-nc 0.10):
- `io.injector.Injector`: the host sends one input vector per step (graded: the first hop has
  `num_message_bits` > 0, since Lava's Dense otherwise casts its input to bool);
- `dense.Dense` / `sparse.Sparse`: one per connection, `weight_exp` for fixed_pt;
- `lif.LIFReset`: one per layer, reset every T steps at the first step of its own window, to
  its rest potential (`v_rest`; Lava's own models reset to 0, so `_RestartFromRest` extends
  them); a layer whose neurons differ in decay runs on `LIFResetPerNeuron`, a readout (LI,
  CubaLI, I) on `VoltageReadout` (below);
- `io.reset.Reset`: zeroes, before a layer's window, the pending activation of a connection
  that would carry the previous sample into it (a recurrent connection; every input of a layer
  whose input lags a step);
- `io.source.RingBuffer` of ones: the constant input of CubaLIF and CubaLI affine biases;
- `io.extractor.Extractor`: one per layer, hands every step's spikes (a readout's voltage)
  back to the host, which counts activity and keeps the output layer's values, dropping each
  layer's leading latency.
`Loihi2SimCfg(select_tag=mode)` picks float or bit-accurate models. Injector and Extractor
have untagged models only, so they are named in `exception_proc_model_map`, as are our LIF
models (restart from rest, per-neuron decays, voltage readout: hardware/lava_models/); in
fixed_pt the injector sends int32, as Lava's fixed-point RingBuffer does. `--backend loihi2`
builds the same network under `Loihi2HwCfg` with Lava's own LIFReset (its chip model), see
`run_config`.

Reading Lava Vars from the host is per element (~25 us each) and rebuilding per sample costs
a compile, so outputs stream through Extractors while the host keeps `LAG` steps of input
ahead of the network.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.dense.process import Dense
from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
from lava.proc.io.injector import Injector, PyLoihiInjectorModel
from lava.proc.io.reset import Reset
from lava.proc.io.source import RingBuffer
from lava.proc.lif.process import LIFReset
from lava.proc.sparse.process import Sparse
from scipy import sparse

from hardware.lava_models import (
    LIFResetPerNeuron,
    PyLifFromRestModelFixed,
    PyLifFromRestModelFloat,
    PyLifPerNeuronModelFixed,
    PyLifPerNeuronModelFloat,
    PyLoihiInjectorModelFixed,
    PyVoltageReadoutModelFixed,
    PyVoltageReadoutModelFloat,
    VoltageReadout,
)
from hardware.plan import CONSTANT, LavaPlan, NeuronLayer
from hardware.quantize import LOIHI
from hardware.supervise import descendants, kill_processes

LAG = 32
BUFFER = 2 * LAG
GRADED_MESSAGE_BITS = 24


class LavaProcessFailed(RuntimeError):
    """A Lava process ended in the middle of a run (its exception, when Lava kept one)."""


@dataclass(frozen=True)
class LavaRun:
    """The output layer's values (samples, T, *output_shape): spikes, or a readout's voltage
    in NIR's units; spike counts per spiking layer and, when recorded, every spiking layer's
    spike trains (samples, T, *layer_shape)."""

    output: np.ndarray
    activity: dict[str, np.ndarray]
    build_s: float
    run_s: float
    steps: int
    spikes: dict[str, np.ndarray] | None = None

    @property
    def ms_per_step(self) -> float:
        return 1000 * self.run_s / self.steps


def run_plan(
    plan: LavaPlan, inputs: np.ndarray, record_spikes: bool = False, backend: str = "sim"
) -> LavaRun:
    """Run `inputs` (samples, T, *plan.input_shape), latency removed, from rest every sample;
    `record_spikes` keeps every layer's spike trains, not only the output layer's; `backend`
    "sim" (Loihi2SimCfg) or "loihi2" (Loihi2HwCfg, see `run_config`). See `stream_through`
    for failures.
    """
    samples, steps_per_sample = inputs.shape[:2]
    stream = plan.encode_input(inputs.reshape(samples * steps_per_sample, plan.input_size))
    total = samples * steps_per_sample + plan.depth
    started = time.perf_counter()
    network = _Network(plan, steps_per_sample)
    recorder = _Recorder(plan, samples, steps_per_sample, record_spikes)
    created = time.perf_counter() - started
    compile_s, run_s = stream_through(
        network.injector,
        network.extractors,
        stream,
        total,
        recorder.record,
        run_config(plan.mode, backend),
    )
    spiking = [layer for layer in plan.layers if layer.spiking]
    return LavaRun(
        output=recorder.output.reshape(samples, steps_per_sample, *plan.output_shape),
        activity={
            layer.name: recorder.counts[layer.name].reshape(samples, *layer.shape)
            for layer in spiking
        },
        build_s=created + compile_s,
        run_s=run_s,
        steps=total,
        spikes=None
        if recorder.trains is None
        else {
            layer.name: recorder.trains[layer.name].reshape(samples, steps_per_sample, *layer.shape)
            for layer in spiking
        },
    )


def stream_through(
    injector: Injector,
    extractors: dict[str, Extractor],
    stream: np.ndarray,
    total: int,
    record: Callable[[str, int, np.ndarray], None],
    run_cfg,
) -> tuple[float, float]:
    """Compile and run the network `injector` feeds for `total` steps, sending `stream`
    (steps, input size; zeros after its end) and handing every step's output of each
    extractor to `record(name, step, values)`; returns (compile s, run s).

    On any failure the run's processes are killed (and their shared memory unlinked), since
    Lava's `stop()` waits for processes that may never answer; LavaProcessFailed when one of
    them died.
    """
    started = time.perf_counter()
    completed = False
    try:
        injector.create_runtime(run_cfg=run_cfg)
        built = time.perf_counter()
        watch = _Watch(injector)
        injector.run(condition=RunSteps(num_steps=total, blocking=False))
        zeros = np.zeros(stream.shape[1])
        for step in range(total + LAG):
            if step < total:
                injector.send(stream[step] if step < len(stream) else zeros)
            if step >= LAG:
                for name, extractor in extractors.items():
                    record(name, step - LAG, watch.receive(extractor))
        injector.wait()
        finished = time.perf_counter()
        completed = True
    finally:
        if completed:
            injector.stop()
        else:
            kill_processes(lambda: descendants(os.getpid()))
    return built - started, finished - built


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
            neurons = _population(layer, period)
            outports[layer.name] = neurons.s_out  # before the inputs: a recurrent one is its own
            for conn in layer.inputs:
                if conn.source == CONSTANT and CONSTANT not in outports:
                    outports[CONSTANT] = RingBuffer(data=np.ones((1, 1))).s_out
                synapses = _synapses(conn, graded=conn.source == plan.input_name)
                outports[conn.source].connect(synapses.s_in)
                synapses.a_out.connect(neurons.a_in)
                if conn.clear_at_window_start:
                    _clear_before_window(synapses, layer, period)
            extractor = Extractor(shape=(layer.size,), buffer_size=BUFFER)
            neurons.s_out.connect(extractor.in_port)
            self.extractors[layer.name] = extractor


def _population(layer: NeuronLayer, period: int) -> LIFReset:
    """Lava's LIFReset where it holds the layer, else our per-neuron or readout variant."""
    kwargs = dict(
        shape=(layer.size,),
        vth=layer.vth,
        bias_mant=layer.bias_mant,
        bias_exp=layer.bias_exp,
        reset_interval=period,
        reset_offset=(layer.latency + 1) % period,
        name=layer.name,
    )
    if layer.spiking and layer.uniform_decays:
        du, dv = np.ravel(layer.du)[0], np.ravel(layer.dv)[0]
        neurons = LIFReset(du=du.item(), dv=dv.item(), **kwargs)
    else:
        kind = LIFResetPerNeuron if layer.spiking else VoltageReadout
        du = np.broadcast_to(layer.du, (layer.size,))
        neurons = kind(du=du, dv=np.broadcast_to(layer.dv, (layer.size,)), **kwargs)
    neurons.proc_params["v_rest"] = np.broadcast_to(layer.v_rest, (layer.size,)).copy()
    return neurons


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
    """Zero the activation a hop would deliver at the layer's window start (end of step s0-1):
    the previous sample's last step.

    Reset acts after the step where `(time_step - 1) % period == offset`; the window starts at
    step s0 = k * period + latency + 1.
    """
    reset = Reset(reset_value=0, interval=period, offset=(layer.latency - 1) % period)
    reset.connect_var(synapses.a_buff)


# What Lava's Loihi 2 run configuration needs beyond lava-nc: Intel's Lava extension for Loihi
# (lava-loihi), found as `lava.utils.loihi.is_installed()` finds it, and the NeuroCore process
# models it provides.
LOIHI_EXTENSION_MODULES = ("lava.utils.loihi2_profiler", "lava.magma.core.model.nc.model")


def loihi2_missing() -> str | None:
    """None when `--backend loihi2` can run here, else one line saying what is missing."""
    missing = [name for name in LOIHI_EXTENSION_MODULES if not _importable(name)]
    if not missing:
        return None
    return (
        "--backend loihi2 needs Intel's Lava extension for Loihi (lava-loihi, distributed to "
        f"Intel Neuromorphic Research Community members), and {', '.join(missing)} is not "
        "importable in this environment; use --backend sim (Lava's CPU simulator of Loihi 2)"
    )


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is absent
        return False


def run_config(mode: str, backend: str = "sim"):
    """Lava's run configuration: the Loihi 2 simulator with our models, or (`loihi2`) the chip
    through Intel's Loihi extension, where Lava's own LIFReset runs on the neuro-cores and
    only the host-side injector and extractors keep their Python models
    (`hardware.plan.loihi2_problems` has refused what needs our models)."""
    fixed = mode == "fixed_pt"
    io_models = {
        Injector: PyLoihiInjectorModelFixed if fixed else PyLoihiInjectorModel,
        Extractor: PyLoihiExtractorModel,
    }
    if backend == "loihi2":
        from lava.magma.core.run_configs import Loihi2HwCfg

        return Loihi2HwCfg(select_tag=mode, exception_proc_model_map=io_models)
    return Loihi2SimCfg(
        select_tag=mode,
        exception_proc_model_map={
            **io_models,
            LIFReset: PyLifFromRestModelFixed if fixed else PyLifFromRestModelFloat,
            LIFResetPerNeuron: PyLifPerNeuronModelFixed if fixed else PyLifPerNeuronModelFloat,
            VoltageReadout: PyVoltageReadoutModelFixed if fixed else PyVoltageReadoutModelFloat,
        },
    )


class _Recorder:
    """Assigns each streamed step to (sample, t) per layer, dropping the layer's latency; a
    readout's voltage comes back in NIR's units (fixed_pt: divided by its threshold << 6)."""

    def __init__(
        self, plan: LavaPlan, samples: int, steps_per_sample: int, keep_trains: bool = False
    ) -> None:
        self.steps_per_sample = steps_per_sample
        self.samples = samples
        self.latency = {layer.name: layer.latency for layer in plan.layers}
        self.output_layer = plan.output_layer
        spiking = [layer for layer in plan.layers if layer.spiking]
        self.counts = {layer.name: np.zeros((samples, layer.size)) for layer in spiking}
        output = plan.layer(plan.output_layer)
        self.output_unit = 1.0
        if not output.spiking and plan.mode == "fixed_pt":
            self.output_unit = float(output.vth) * 2**LOIHI.activation_shift
        steps = samples * steps_per_sample
        self.output = np.zeros((steps, output.size), dtype=np.float32)
        self.trains = (
            {layer.name: np.zeros((steps, layer.size), np.float32) for layer in spiking}
            if keep_trains
            else None
        )

    def record(self, layer: str, step: int, values: np.ndarray) -> None:
        index = step - self.latency[layer]
        if not 0 <= index < self.samples * self.steps_per_sample:
            return
        if layer in self.counts:
            self.counts[layer][index // self.steps_per_sample] += values
        if layer == self.output_layer:
            self.output[index] = values / self.output_unit
        if self.trains is not None and layer in self.trains:
            self.trains[layer][index] = values
