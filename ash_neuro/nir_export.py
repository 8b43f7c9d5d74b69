"""NIR export of the spiking semantic abstract encoder, and the contract that drives it.

Only the encoder's network over time (`SemanticAbstractEncoder.network`, a Norse
`SequentialState` of `torch.nn.Linear` and `LIFBoxCell` layers) becomes a NIR graph; the input
encoding stays in PyTorch and is described by an `EncoderContract`, stored in the graph's
metadata and in a JSON sidecar (`encoder.nir.json`) for readers without `nir` (the Lava side).

Every export is verified before it replaces the output file: the written file is read back with
`nir.read`, rebuilt in PyTorch by Norse's own importer (`norse.torch.from_nir`), and both the
original and the rebuilt network are run on the same sample currents; their spike trains must
agree exactly. The graph is also run by `simulate_nir`, a NumPy forward-Euler integration of
NIR's documented equations, so that the graph is checked against what NIR *means*, not only
against Norse's reading of it.

Upstream gaps worked around here (norse 1.1.0, nir 1.0.8, nirtorch 2.6), each at the line that
fills it: the LIF time constant carries a spurious factor of dt (norse#411), `v_reset` is not
exported, neuron parameters are 0-d and so leave the LIF nodes with empty `input_type` /
`output_type` and make `nir.write` fail, weights are torch tensors, and the Input/Output shapes
include the batch dimension of the sample.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import nir
import numpy as np
import torch
from norse.torch import LIFBoxCell, from_nir, to_nir
from norse.torch.functional.reset import reset_value

from ash_neuro.errors import AshError

CONTRACT_SCHEMA = "ash-neuro/encoder-contract"
CONTRACT_VERSION = 1
METADATA_KEY = "ash_neuro_contract"
# How `SemanticAbstractEncoder.encode_input` turns visual tokens into currents, for consumers
# that compute the currents themselves (kept equal to the model's ENCODINGS by a test).
ENCODING_DESCRIPTIONS = {
    "current": "currents[t] = input_gain * features for every step t (direct coding); features "
    "are the visual concrete encoder's tokens (batch, tokens_per_image, in_dim) flattened to "
    "rows = batch * tokens_per_image",
    "poisson": "currents[t] = input_gain * s_t, s_t ~ Bernoulli(sigmoid(features)) drawn "
    "independently per step and element (rate coding); features as for 'current'",
}
ENCODINGS = tuple(ENCODING_DESCRIPTIONS)
# What Norse computes, in NIR's terms; the derivation is in `lif_box_to_nir`.
SEMANTICS = (
    "NIR LIF by forward Euler with step dt: v += (dt / tau) * ((v_leak - v) + r * I); spike "
    "where v > v_threshold (strict), then v = v_reset, within the same step; Affine y = W x + b; "
    "a spike reaches the next layer in the same step (no delay); every row starts at v = v_leak"
)
# The independent NumPy reading of the graph differs from Norse only in float32 rounding (an
# expression such as dt/tau vs dt*tau_mem_inv may differ in the last bit), which can flip a
# spike whose membrane lands within ~1e-7 of threshold; a semantic error (a wrong tau, r or
# threshold) disagrees on far more than this.
REFERENCE_MIN_AGREEMENT = 0.999


class NIRExportError(AshError):
    """The encoder cannot be exported (a layer NIR cannot express, an unwritable path, ...)."""


class ExportVerificationError(NIRExportError):
    """The written graph does not reproduce the encoder; the export is discarded."""


@dataclass(frozen=True)
class EncoderContract:
    """What a consumer of `encoder.nir` needs to drive it, beside the graph itself.

    Tensors cross the seam time-first: input currents `(time_steps, rows, in_dim)` float32,
    one row per (image, token) pair, image-major (row = image * tokens_per_image + token), fed
    to the graph's Input node one step at a time; output spikes `(time_steps, rows, out_dim)`
    in {0, 1} from its Output node. `encoding` says how the currents are made from the visual
    tokens (`input_encoding`, `input_gain`); that stays in PyTorch. Every row starts from
    rest (`v = v_leak`) at step 0. Within a step a spike reaches the next layer in the same step
    (no synaptic delay); a simulator that pipelines layers (Lava's processes do, one step per
    layer) delivers the same spikes `len(layer_sizes) - 1` steps later.
    """

    time_steps: int
    dt: float
    in_dim: int
    out_dim: int
    tokens_per_image: int
    layer_sizes: tuple[int, ...]
    input_encoding: str
    input_gain: float
    encoding: str
    input_node: str = "input"
    output_node: str = "output"
    semantics: str = SEMANTICS
    schema: str = CONTRACT_SCHEMA
    version: int = CONTRACT_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "layer_sizes", tuple(self.layer_sizes))
        problems = []
        if self.schema != CONTRACT_SCHEMA or self.version != CONTRACT_VERSION:
            problems.append(
                f"schema {self.schema!r} v{self.version}, expected {CONTRACT_SCHEMA!r} "
                f"v{CONTRACT_VERSION}"
            )
        for name in ("time_steps", "in_dim", "out_dim", "tokens_per_image"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        if not _is_number(self.dt) or not math.isfinite(self.dt) or self.dt <= 0:
            problems.append(f"dt must be a positive number of seconds, got {self.dt!r}")
        if not _is_number(self.input_gain) or not math.isfinite(self.input_gain):
            problems.append(f"input_gain must be a finite number, got {self.input_gain!r}")
        if not self.layer_sizes or any(
            isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in self.layer_sizes
        ):
            problems.append(f"layer_sizes must be positive integers, got {self.layer_sizes!r}")
        elif self.layer_sizes[-1] != self.out_dim:
            problems.append(
                f"the last layer has {self.layer_sizes[-1]} neurons, not {self.out_dim}"
            )
        if self.input_encoding not in ENCODINGS:
            problems.append(f"input_encoding must be one of {', '.join(ENCODINGS)}")
        for name in ("encoding", "semantics", "input_node", "output_node"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                problems.append(f"{name} must be a non-empty string")
        if problems:
            raise NIRExportError("invalid encoder contract: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["layer_sizes"] = list(self.layer_sizes)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EncoderContract:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise NIRExportError(f"invalid encoder contract: unknown keys {', '.join(unknown)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise NIRExportError(f"invalid encoder contract: {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> EncoderContract:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise NIRExportError(f"invalid encoder contract: not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise NIRExportError("invalid encoder contract: not a JSON object")
        return cls.from_dict(data)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def sidecar_path(nir_path: str | Path) -> Path:
    """`encoder.nir` -> `encoder.nir.json`."""
    nir_path = Path(nir_path)
    return nir_path.with_name(nir_path.name + ".json")


def read_contract(nir_path: str | Path) -> EncoderContract:
    """The contract stored in a graph written by `export_network`."""
    graph = nir.read(nir_path)
    text = graph.metadata.get(METADATA_KEY)
    if not isinstance(text, str):
        raise NIRExportError(f"{nir_path} has no '{METADATA_KEY}' metadata")
    return EncoderContract.from_json(text)


# --- the parameter mapping -------------------------------------------------------------------


def lif_box_to_nir(cell: LIFBoxCell, size: int, name: str = "") -> nir.LIF:
    """Map a Norse `LIFBoxCell` of `size` neurons to a NIR `LIF` node (the one place they meet).

    Norse's LIFBox step of length dt (norse/torch/functional/lif_box.py) is
        v <- v + dt * tau_mem_inv * ((v_leak - v) + i)
        z  = 1 if v > v_th else 0          (heaviside: strictly greater)
        v <- v_reset if z else v            (reset_value)
    NIR's LIF (nir/ir/neuron.py) is the ODE tau * dv/dt = (v_leak - v) + r * I with
    z = 1 if v > v_threshold and then v = v_reset; integrated by forward Euler with the same dt:
        v <- v + (dt / tau) * ((v_leak - v) + r * I)
    Equal for every v and I exactly when
        dt / tau = dt * tau_mem_inv   =>  tau = 1 / tau_mem_inv   (seconds; dt cancels)
        (dt / tau) * r = dt * tau_mem_inv  =>  r = 1
        v_threshold = v_th, v_leak = v_leak, v_reset = v_reset,
    with the same strict comparison and reset-to-value order. The default cell
    (tau_mem_inv = 100 /s) is tau = 0.01 s. Norse 1.1.0's `to_nir` writes tau = dt / tau_mem_inv
    (1e-5 s at dt = 1e-3 s): a dimensional slip, not a unit convention (norse#411, fixed on
    norse's main by norse#413 after 1.1.0, which then writes 1 / tau_mem_inv); a consumer
    integrating NIR's equation would take steps of dt / tau = 100 and diverge.

    NIR types a neuron node by the shape of its parameters, so each parameter is broadcast to
    `(size,)`; Norse's scalar (0-d) parameters leave `input_type` empty and make `nir.write`
    fail on compressing 0-d datasets (NIR expects neuron-shaped arrays: neuromorphs/NIR#12,
    #107, #162; jeshraghian/snntorch#334).
    """
    p = cell.p
    label = f"layer {name} (LIFBoxCell)" if name else "LIFBoxCell"
    if p.reset_method is not reset_value:
        method = getattr(p.reset_method, "__name__", repr(p.reset_method))
        raise NIRExportError(
            f"{label} resets with {method}; NIR's LIF resets to v_reset, so only "
            "reset_value can be exported"
        )

    def neurons(value: Any, what: str) -> np.ndarray:
        array = np.asarray(torch.as_tensor(value).detach().cpu(), dtype=np.float32)
        try:
            return np.broadcast_to(array, (size,)).copy()
        except ValueError:
            raise NIRExportError(
                f"{label}: {what} has shape {tuple(array.shape)}, which does not broadcast to "
                f"its {size} neurons"
            ) from None

    tau_mem_inv = neurons(p.tau_mem_inv, "tau_mem_inv")
    if np.any(tau_mem_inv <= 0) or not np.all(np.isfinite(tau_mem_inv)):
        raise NIRExportError(f"{label}: tau_mem_inv must be positive and finite")
    return nir.LIF(
        tau=np.float32(1.0) / tau_mem_inv,
        r=np.ones(size, dtype=np.float32),
        v_leak=neurons(p.v_leak, "v_leak"),
        v_threshold=neurons(p.v_th, "v_th"),
        v_reset=neurons(p.v_reset, "v_reset"),
    )


# --- graph construction ----------------------------------------------------------------------


def check_exportable(network: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """The network's layers in order; a layer NIR (through this exporter) cannot express is a
    one-line error naming it and its type."""
    layers = list(network.named_children())
    if not layers:
        raise NIRExportError("the spiking network has no layers to export")
    for name, layer in layers:
        if not isinstance(layer, torch.nn.Linear | LIFBoxCell):
            kind = f"{type(layer).__module__}.{type(layer).__qualname__}"
            raise NIRExportError(
                f"layer {name} ({kind}) cannot be exported to NIR; the semantic abstract "
                "encoder may contain only torch.nn.Linear and norse LIFBoxCell layers"
            )
    if not isinstance(layers[-1][1], LIFBoxCell):
        raise NIRExportError(
            f"the last layer {layers[-1][0]} ({type(layers[-1][1]).__name__}) is not a "
            "LIFBoxCell; the encoder's output must be spikes"
        )
    if not isinstance(layers[0][1], torch.nn.Linear):
        raise NIRExportError(
            f"the first layer {layers[0][0]} ({type(layers[0][1]).__name__}) is not a "
            "torch.nn.Linear; the encoder's input width must be known"
        )
    return layers


def network_to_nir(
    network: torch.nn.Module, metadata: Mapping[str, Any] | None = None
) -> nir.NIRGraph:
    """A type-checked NIR graph of `network` (Linear -> Affine, LIFBoxCell -> LIF)."""
    layers = check_exportable(network)
    in_dim = layers[0][1].in_features
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit / nirtorch deprecation notices
        # norse 1.1.0's `dt` argument only scales the time constants (norse#413 renamed it
        # `time_scaling_factor`, default 1); 1.0 makes its LIF tau = 1 / tau_mem_inv.
        upstream = to_nir(network, torch.zeros(1, in_dim), dt=1.0)
    nodes: dict[str, nir.NIRNode] = {}
    size = in_dim
    for name, layer in layers:
        node = upstream.nodes.get(name)
        if isinstance(layer, torch.nn.Linear):
            if not isinstance(node, nir.Affine):
                raise _upstream_changed(name, node)
            # norse 1.1.0 hands over torch tensors; NIR's nodes hold NumPy arrays (norse#435).
            nodes[name] = nir.Affine(
                weight=np.asarray(node.weight, dtype=np.float32),
                bias=np.asarray(node.bias, dtype=np.float32),
            )
            size = layer.out_features
        else:
            if not isinstance(node, nir.LIF):
                raise _upstream_changed(name, node)
            nodes[name] = lif_box_to_nir(layer, size, name)
            # Norse's own mapping must agree with ours wherever it is defined; it lacks v_reset
            # and the neuron shape, which `lif_box_to_nir` adds.
            for key in ("tau", "r", "v_leak", "v_threshold"):
                theirs = np.asarray(getattr(node, key), dtype=np.float32)
                if not np.allclose(np.broadcast_to(theirs, (size,)), getattr(nodes[name], key)):
                    raise _upstream_changed(name, node, key)
    # norse 1.1.0's to_nir keeps the sample's batch dimension in the Input/Output shapes (it
    # does not pass nirtorch's `ignore_dims`); a graph's types are per-sample.
    nodes["input"] = nir.Input(input_type={"input": np.array([in_dim])})
    nodes["output"] = nir.Output(output_type={"output": np.array([size])})
    chain = ["input", *(name for name, _ in layers), "output"]
    edges = list(zip(chain[:-1], chain[1:]))
    if sorted(edges) != sorted(tuple(e) for e in upstream.edges):
        raise NIRExportError(
            f"norse.to_nir traced edges {sorted(upstream.edges)}, not the chain {edges}; "
            "review ash_neuro/nir_export.py against the installed norse"
        )
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(metadata or {}))
    except ValueError as exc:  # NIR's type check
        raise NIRExportError(f"the NIR graph does not type-check: {exc}") from None


def _upstream_changed(name: str, node: Any, key: str = "") -> NIRExportError:
    what = f"its {key}" if key else f"a {type(node).__name__}"
    return NIRExportError(
        f"norse.to_nir emitted {what} for layer {name}, unlike the mapping this exporter "
        "checks against; review ash_neuro/nir_export.py against the installed norse"
    )


def node_types(graph: nir.NIRGraph) -> list[str]:
    """Node types in execution order (the graph is a chain from Input to Output)."""
    return [type(graph.nodes[name]).__name__ for name in _chain(graph)]


def _chain(graph: nir.NIRGraph) -> list[str]:
    successors: dict[str, list[str]] = {}
    for src, dst in graph.edges:
        successors.setdefault(src, []).append(dst)
    inputs = [name for name, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        raise NIRExportError(f"expected one Input node, found {len(inputs)}")
    order = [inputs[0]]
    while successors.get(order[-1]):
        nxt = successors[order[-1]]
        if len(nxt) != 1 or nxt[0] in order:
            raise NIRExportError(f"node {order[-1]} does not lead to one next node: {nxt}")
        order.append(nxt[0])
    if len(order) != len(graph.nodes):
        raise NIRExportError("the graph is not a single chain from Input to Output")
    return order


# --- running the three readings of the network -----------------------------------------------

Spikes = dict[str, np.ndarray]  # LIF layer name -> spikes (T, rows, neurons); "output" too


def run_network(network: torch.nn.Module, currents: torch.Tensor) -> torch.Tensor:
    """Run a Norse stateful network step by step: (T, rows, in) -> (T, rows, out)."""
    state = None
    outputs = []
    with torch.no_grad():
        for step in currents:
            out, state = network(step, state)
            outputs.append(out)
    return torch.stack(outputs)


def record_spikes(root: torch.nn.Module, run: Callable[[], torch.Tensor]) -> Spikes:
    """Call `run()` and collect, per step, the spikes of every LIFBoxCell directly in `root`."""
    steps: dict[str, list[torch.Tensor]] = {}
    handles = []
    for name, module in root.named_children():
        if isinstance(module, LIFBoxCell):

            def hook(_module, _inputs, output, name=name):
                steps.setdefault(name, []).append(output[0].detach().clone())

            handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            output = run()
    finally:
        for handle in handles:
            handle.remove()
    spikes = {name: torch.stack(z).cpu().numpy() for name, z in steps.items()}
    spikes["output"] = output.detach().cpu().numpy()
    return spikes


def run_from_nir(graph: nir.NIRGraph, currents: torch.Tensor, dt: float) -> Spikes:
    """Rebuild `graph` with Norse's importer and run it on `currents` (T, rows, in_dim).

    norse 1.1.0's `from_nir` reads tau_mem_inv = 1 / tau but ignores `r` (it only warns) and
    `v_reset` (norse/torch/utils/import_nir.py); the encoder's r = 1 and v_reset = 0 make that
    harmless, and `simulate_nir` reads both, so a graph where they mattered is still checked.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nirtorch.load's deprecation notice
        module = from_nir(graph, dt=dt)
    module.eval()
    return record_spikes(module, lambda: run_network(module, currents.cpu()))


def simulate_nir(graph: nir.NIRGraph, currents: np.ndarray, dt: float) -> Spikes:
    """NumPy reference: NIR's Affine, Linear and LIF equations, forward Euler with step `dt`.

    Independent of Norse: reads only the graph and NIR's documented semantics (see
    `lif_box_to_nir`), in float32, starting every LIF at v = v_leak.
    """
    x_all = np.asarray(currents, dtype=np.float32)
    dt32 = np.float32(dt)
    order = _chain(graph)
    potentials: dict[str, np.ndarray] = {}
    steps: dict[str, list[np.ndarray]] = {}
    for x in x_all:
        for name in order:
            node = graph.nodes[name]
            if isinstance(node, nir.Affine):
                x = x @ node.weight.T.astype(np.float32) + node.bias.astype(np.float32)
            elif isinstance(node, nir.Linear):
                x = x @ node.weight.T.astype(np.float32)
            elif isinstance(node, nir.LIF):
                v = potentials.get(name)
                if v is None:
                    v = np.broadcast_to(node.v_leak, x.shape).astype(np.float32)
                v = v + (dt32 / node.tau) * ((node.v_leak - v) + node.r * x)
                z = v > node.v_threshold
                potentials[name] = np.where(z, node.v_reset, v).astype(np.float32)
                x = z.astype(np.float32)
                steps.setdefault(name, []).append(x)
            elif not isinstance(node, nir.Input | nir.Output):
                raise NIRExportError(f"the NumPy reference cannot run {type(node).__name__}")
        steps.setdefault("output", []).append(x)
    return {name: np.stack(z) for name, z in steps.items()}


def spike_agreement(a: Spikes, b: Spikes) -> dict[str, float]:
    """Fraction of equal entries per layer in both, and over all of them ("all")."""
    names = [name for name in a if name in b]
    if set(names) != set(a) or set(names) != set(b):
        raise ExportVerificationError(
            f"the rebuilt network has spiking layers {sorted(b)}, the original {sorted(a)}"
        )
    result, equal, total = {}, 0, 0
    for name in names:
        if a[name].shape != b[name].shape:
            raise ExportVerificationError(
                f"layer {name}: spike trains of shape {b[name].shape}, expected {a[name].shape}"
            )
        same = int(np.count_nonzero(a[name] == b[name]))
        result[name] = same / a[name].size
        if name != "output":
            equal, total = equal + same, total + a[name].size
    result["all"] = equal / total if total else result["output"]
    return result


# --- writing and verifying -------------------------------------------------------------------


@dataclass
class ExportReport:
    path: Path
    sidecar: Path
    node_types: list[str]
    agreement: dict[str, float]  # Norse vs norse.from_nir of the file read back
    reference_agreement: dict[str, float]  # Norse vs the NumPy reading of NIR's equations
    output_spike_rate: float
    samples: str
    seconds: float
    notes: list[str] = field(default_factory=list)


def export_network(
    network: torch.nn.Module,
    contract: EncoderContract,
    path: str | Path,
    currents: torch.Tensor,
    run_original: Callable[[torch.Tensor], torch.Tensor] | None = None,
    samples: str = "sample currents",
) -> ExportReport:
    """Write `network` as a NIR graph at `path` and its contract beside it, verified first.

    `currents` (T, rows, in_dim) drive the verification; `run_original` maps them to output
    spikes (T, rows, out_dim) the way the model does (default: `run_network(network, ...)`).
    Both files are written to temporaries beside their targets, the graph is read back and
    checked, and only then are they moved into place; a failed check leaves nothing behind.
    """
    start = time.perf_counter()
    path = Path(path)
    notes = _float32_notes(network)
    graph = network_to_nir(network, {METADATA_KEY: contract.to_json()})
    _check_contract(graph, contract)
    run_original = run_original or (lambda x: run_network(network, x))
    original = record_spikes(network, lambda: run_original(currents))

    sidecar = sidecar_path(path)
    temporaries = [_temporary_beside(path), _temporary_beside(sidecar)]
    try:
        graph_tmp, sidecar_tmp = temporaries
        _write(lambda: nir.write(graph_tmp, graph), path)
        _write(lambda: Path(sidecar_tmp).write_text(contract.to_json() + "\n"), sidecar)
        back = nir.read(graph_tmp)
        if EncoderContract.from_json(back.metadata.get(METADATA_KEY, "")) != contract:
            raise ExportVerificationError("the contract read back from the graph differs")
        agreement = spike_agreement(original, run_from_nir(back, currents, contract.dt))
        reference = spike_agreement(
            original, simulate_nir(back, currents.cpu().numpy(), contract.dt)
        )
        if agreement["output"] < 1.0 or agreement["all"] < 1.0:
            raise ExportVerificationError(
                f"norse.from_nir of the written graph agrees with the encoder on "
                f"{100 * agreement['output']:.4f}% of output spikes "
                f"({100 * agreement['all']:.4f}% over all layers), not 100%; export discarded"
            )
        if reference["all"] < REFERENCE_MIN_AGREEMENT:
            raise ExportVerificationError(
                f"NIR's LIF equations integrated with dt={contract.dt} agree with the encoder on "
                f"only {100 * reference['all']:.4f}% of spikes; the graph does not mean what "
                "Norse computes; export discarded"
            )
        _write(lambda: os.replace(graph_tmp, path), path)
        _write(lambda: os.replace(sidecar_tmp, sidecar), sidecar)
    finally:
        for tmp in temporaries:
            Path(tmp).unlink(missing_ok=True)
    rate = float(original["output"].mean())
    if rate == 0:
        notes.append("the samples produced no output spikes, so the agreement is vacuous")
    return ExportReport(
        path=path,
        sidecar=sidecar,
        node_types=node_types(graph),
        agreement=agreement,
        reference_agreement=reference,
        output_spike_rate=rate,
        samples=samples,
        seconds=time.perf_counter() - start,
        notes=notes,
    )


def lif_widths(network: torch.nn.Module) -> tuple[int, ...]:
    """Neurons per LIFBoxCell layer of an exportable network, in order."""
    widths, size = [], None
    for _, layer in check_exportable(network):
        if isinstance(layer, torch.nn.Linear):
            size = layer.out_features
        else:
            widths.append(size)
    return tuple(widths)


def _check_contract(graph: nir.NIRGraph, contract: EncoderContract) -> None:
    """The contract describes this graph: node names and every width."""
    for name, kind in ((contract.input_node, nir.Input), (contract.output_node, nir.Output)):
        if not isinstance(graph.nodes.get(name), kind):
            raise NIRExportError(f"the contract names {name!r}, which is no {kind.__name__} node")
    lifs = tuple(
        int(graph.nodes[n].v_threshold.size)
        for n in _chain(graph)
        if isinstance(graph.nodes[n], nir.LIF)
    )
    found = (
        int(graph.nodes[contract.input_node].input_type["input"][0]),
        int(graph.nodes[contract.output_node].output_type["output"][0]),
        lifs,
    )
    if found != (contract.in_dim, contract.out_dim, contract.layer_sizes):
        raise NIRExportError(
            f"the contract's in_dim, out_dim, layer_sizes {contract.in_dim}, {contract.out_dim}, "
            f"{contract.layer_sizes} do not match the network's {found[0]}, {found[1]}, {found[2]}"
        )


def _float32_notes(network: torch.nn.Module) -> list[str]:
    notes = []
    for name, layer in network.named_children():
        if isinstance(layer, LIFBoxCell):
            rate = np.asarray(torch.as_tensor(layer.p.tau_mem_inv).detach().cpu(), np.float32)
            if np.any(np.float32(1.0) / (np.float32(1.0) / rate) != rate):
                notes.append(
                    f"layer {name}: tau_mem_inv does not survive float32 inversion exactly "
                    "(tau = 1/tau_mem_inv); a consumer's decay may differ in the last bit"
                )
    return notes


def _temporary_beside(path: Path) -> str:
    if path.is_dir():
        raise NIRExportError(f"cannot write {path}: it is a directory; pass a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise NIRExportError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would outlive the rename
    return tmp


def _write(action: Callable[[], Any], path: Path) -> None:
    try:
        action()
    except OSError as exc:
        raise NIRExportError(f"cannot write {path}: {exc.strerror or exc}") from None


# --- from a checkpoint ----------------------------------------------------------------------

NO_ENCODER = "this checkpoint has no spiking encoder (model.hybrid=false)"


def export_checkpoint(
    checkpoint: str | Path,
    output: str | Path | None = None,
    samples: int = 8,
    seed: int = 0,
) -> ExportReport:
    """Export the semantic abstract encoder of an ash-neuro checkpoint, pre-trained or
    fine-tuned (default output: `encoder.nir` beside it), verified on `samples` images pushed
    through the model's own visual encoder and input encoding."""
    from ash_neuro.models.factory import load_model

    if samples < 1:
        raise NIRExportError(f"--samples must be at least 1, got {samples}")
    checkpoint = Path(checkpoint)
    # Only the two encoders the samples pass through are loaded: nothing else reaches the graph.
    loaded = load_model(checkpoint, parts=("visual_concrete_encoder", "semantic_abstract_encoder"))
    encoder = loaded.backbone.semantic_abstract_encoder
    if encoder is None:
        raise NIRExportError(NO_ENCODER)
    visual = loaded.backbone.visual_concrete_encoder
    contract = EncoderContract(
        time_steps=encoder.time_steps,
        dt=encoder.dt,
        in_dim=encoder.in_dim,
        out_dim=encoder.out_dim,
        tokens_per_image=visual.n_tokens,
        layer_sizes=lif_widths(encoder.network),
        input_encoding=encoder.encoding,
        input_gain=float(encoder.input_gain),
        encoding=ENCODING_DESCRIPTIONS[encoder.encoding],
    )
    size = visual.image_size
    world = loaded.data.location if loaded.data.kind == "world" else None
    images, origin = _sample_images(world, samples, size, seed)
    with torch.no_grad():
        generator = torch.Generator().manual_seed(seed)
        currents = encoder.encode_input(visual(images).tokens, generator).contiguous()
    described = (
        f"{samples} {origin} through the checkpoint's visual encoder and its "
        f"'{encoder.encoding}' input encoding: currents {tuple(currents.shape)}"
    )
    output = Path(output) if output is not None else checkpoint.with_name("encoder.nir")
    return export_network(
        encoder.network,
        contract,
        output,
        currents,
        run_original=lambda x: encoder.run(x)[0],
        samples=described,
    )


def _sample_images(world: Any, samples: int, size: int, seed: int) -> tuple[torch.Tensor, str]:
    """Validation images of the checkpoint's world when it is on disk (real inputs exercise the
    encoder's real spiking regime), else uniform random images of the right size."""
    from ash_neuro.data.world_file import WorldSource

    if isinstance(world, str) and Path(world).is_file():
        try:
            source = WorldSource(world, "val")
            if source.image(0).shape[0] == size:
                rng = np.random.default_rng(seed)
                rows = np.sort(rng.choice(len(source), min(samples, len(source)), replace=False))
                pixels = np.stack([source.image(int(i)) for i in rows])
                images = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(255)
                return images, f"validation images of {world}"
        except AshError:
            pass  # an unreadable world only costs the realism of the samples
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(samples, 3, size, size, generator=generator), (
        f"uniform random {size}x{size} images (the checkpoint's world file is not on disk)"
    )
