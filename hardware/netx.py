"""A `LavaPlan` in lava-dl's netx HDF5 format, the file a Loihi 2 user loads with
`lava.lib.dl.netx.hdf5.Network`, and netx's own run of such a file on Lava's simulator.

The format, as lava-dl 0.6.0 reads it (lava/lib/dl/netx/hdf5.py and utils.py): a group
`layer` with one group per layer, "0", "1", ..., each with `type` (bytes: "input", "dense",
...) and `shape`; a dense layer has `weight` (out, in) integers, optional `bias` integers and
a group `neuron` with `type` "CUBA", `iDecay` (Lava's du + 1), `vDecay` (dv) and `vThMant`
(the threshold mantissa). netx builds each dense layer as Lava's Dense, the weights renormalised
by `optimize_weight_bits` as if stored at exponent 0, into Lava's LIF (LIFReset with a reset
interval) with bias_exp 6; an input layer holding only `shape` adds no neurons. Hence the
`NETX` quantisation profile (hardware/quantize.py): every weight at exponent 0, every bias at
exponent 6, so that `simulate.py --mode fixed_pt --quantise-as netx` runs the very integers
this file holds.

netx cannot express (`netx_problems`, one line each): more than one source per population or a
population not fed by the one before it (netx's layers are a chain), recurrent connections
(netx's `dense_rec` does not clear its recurrent synapse between samples, so a sample's last
spikes reach the next sample's first step), readouts (LI, CubaLI, I: netx's neurons spike),
per-neuron decays (netx's `iDecay`/`vDecay` go to Lava's LIF, one per population), a rest
potential other than the reset (v_leak != v_reset: netx's LIFReset restarts at 0), an input
lagging a step (CubaLIF/CubaLI under --scheme explicit: netx's CUBA neuron is the
semi-implicit one) and a CubaLIF's affine bias (it enters the current; netx's bias enters
the voltage). Convolutions and pooling become dense layers (their full matrices).

Reading a file back: netx layer i (counting the dense layers from 0) emits a sample's step t
at step t + i + 1 of its window, the harness's latency, when the network is built with
`reset_interval = T` and `reset_offset = 1` (netx adds one per layer and one for Lava's
first time step, so layer i resets at time step i + 2 of each window, as the harness's does).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import h5py
import numpy as np
from scipy import sparse

from hardware.plan import HarnessError, LavaPlan

# netx's first layer takes graded input with this many message bits (the harness's Injector
# sends the same to its first hop, lava_network.GRADED_MESSAGE_BITS)
GRADED_MESSAGE_BITS = 24
# `reset_offset` to pass netx.hdf5.Network so that its resets fall where the harness's do
RESET_OFFSET = 1


def netx_problems(plan: LavaPlan) -> list[str]:
    """What keeps the floating-point `plan` out of netx's format; empty when netx holds it."""
    problems = []
    previous = plan.input_name
    for layer in plan.layers:
        where = f"node '{layer.name}' ({layer.kind})"
        sources = [conn.source for conn in layer.inputs]
        if layer.recurrent:
            problems.append(
                f"{where} is recurrent, and netx's dense_rec carries a sample's last spikes "
                "into the next sample"
            )
        elif sources != [previous]:
            problems.append(
                f"{where} is fed by {', '.join(sources)}, not by the one population before it "
                f"({previous}): netx's layers are a chain"
            )
        if not layer.spiking:
            problems.append(f"{where} is a readout, and netx's neurons spike")
        if not layer.uniform_decays:
            problems.append(f"{where} has per-neuron decays; netx holds one iDecay and vDecay")
        if np.any(np.asarray(layer.v_rest) != 0):
            problems.append(f"{where} rests at v_leak != v_reset; netx's neurons restart at 0")
        if any(conn.clear_at_window_start for conn in layer.inputs) and not layer.recurrent:
            problems.append(
                f"{where}'s input lags a step under --scheme {plan.scheme}; netx's CUBA neuron "
                "is the semi-implicit one (--scheme semi-implicit)"
            )
        previous = layer.name
    if plan.layers and plan.layers[-1].name != plan.output_layer:
        problems.append(f"the output node '{plan.output_layer}' is not the last population")
    return list(dict.fromkeys(problems))


def write_netx(plan: LavaPlan, path: Path, attrs: dict) -> None:
    """`plan` (fixed_pt, quantised with quantize.NETX; `netx_problems` empty) as a netx file,
    with `attrs` and the plan's input encoding as file attributes (netx reads none of them)."""
    if plan.mode != "fixed_pt" or any(np.any(np.asarray(x.bias_exp) != 6) for x in plan.layers):
        raise HarnessError("write_netx needs a plan quantised with the netx profile")
    graded = plan.input_scale is not None and plan.input_limit is not None
    with h5py.File(path, "w") as f:
        layers = f.create_group("layer")
        _layer_type(layers.create_group("0"), "input")
        layers["0"].create_dataset("shape", data=np.array([plan.input_size]))
        for index, layer in enumerate(plan.layers, start=1):
            (conn,) = layer.inputs
            group = layers.create_group(str(index))
            _layer_type(group, "dense")
            group.create_dataset("shape", data=np.array([layer.size]))
            weight = conn.weight.toarray() if sparse.issparse(conn.weight) else conn.weight
            group.create_dataset("weight", data=np.asarray(weight, dtype=np.int64))
            if np.any(np.asarray(layer.bias_mant) != 0):
                bias = np.broadcast_to(layer.bias_mant, (layer.size,))
                group.create_dataset("bias", data=np.asarray(bias, dtype=np.int64))
            neuron = group.create_group("neuron")
            _layer_type(neuron, "CUBA")
            neuron.create_dataset("iDecay", data=int(np.ravel(layer.du)[0]) + 1)
            neuron.create_dataset("vDecay", data=int(np.ravel(layer.dv)[0]))
            neuron.create_dataset("vThMant", data=int(layer.vth))
            neuron.create_dataset("refDelay", data=1)
            neuron.create_dataset("gradedSpike", data=False)
        f.attrs.update(attrs)
        f.attrs.update(
            nodes=json.dumps([layer.name for layer in plan.layers]),
            input_scale=float(plan.input_scale),
            input_limit=float(plan.input_limit) if graded else 0.0,
            input_message_bits=GRADED_MESSAGE_BITS if graded else 0,
            reset_offset=RESET_OFFSET,
        )


def run_netx(path: Path, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """The file as lava-dl's netx builds it, run on Lava's bit-accurate simulator (fixed_pt)
    on `inputs` (samples, T, input size), each sample from a reset: every layer's spikes
    (samples, T, size) by NIR node, aligned with the input."""
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
    from lava.proc.io.injector import Injector

    from hardware.lava_models import PyLoihiInjectorModelFixed
    from hardware.lava_network import BUFFER, stream_through

    with contextlib.redirect_stdout(io.StringIO()):  # slayer's notice of optional datasets
        from lava.lib.dl.netx import hdf5

    with h5py.File(path, "r") as f:
        nodes = json.loads(f.attrs["nodes"])
        scale, limit = float(f.attrs["input_scale"]), float(f.attrs["input_limit"])
        bits = int(f.attrs["input_message_bits"])
    samples, steps = inputs.shape[:2]
    stream = np.rint(inputs.reshape(samples * steps, -1) * scale)
    if limit:
        stream = np.clip(stream, -limit, limit)
    network = hdf5.Network(
        net_config=str(path),
        input_message_bits=bits,
        reset_interval=steps,
        reset_offset=RESET_OFFSET,
    )
    injector = Injector(shape=network.inp.shape, buffer_size=BUFFER)
    injector.out_port.connect(network.inp)
    extractors = {}
    for node, block in zip(nodes, network.layers):
        extractors[node] = Extractor(shape=block.out.shape, buffer_size=BUFFER)
        block.out.connect(extractors[node].in_port)
    latency = {node: index + 1 for index, node in enumerate(nodes)}
    spikes = {node: np.zeros((samples * steps, block.out.size)) for node, block in
              zip(nodes, network.layers)}  # fmt: skip

    def record(node: str, step: int, values: np.ndarray) -> None:
        index = step - latency[node]
        if 0 <= index < samples * steps:
            spikes[node][index] = values

    config = Loihi2SimCfg(
        select_tag="fixed_pt",
        exception_proc_model_map={
            Injector: PyLoihiInjectorModelFixed,
            Extractor: PyLoihiExtractorModel,
        },
    )
    stream_through(injector, extractors, stream, samples * steps + len(nodes), record, config)
    return {node: trains.reshape(samples, steps, -1) for node, trains in spikes.items()}


def _layer_type(group: h5py.Group, kind: str) -> None:
    """`type` as lava-dl's slayer writes it: one fixed-length byte string."""
    group.create_dataset("type", (1,), "S10", [kind.encode("ascii")])
