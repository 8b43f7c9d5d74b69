"""Energy and latency estimates of the spiking encoder from its measured activity.

ESTIMATES, NOT MEASUREMENTS: operation counts come from the simulation's actual spikes; each
count is multiplied by a per-operation figure of a hardware profile, a data file in
`ash_neuro/energy_profiles/` whose every figure names its published source. Nothing here is
read from a chip.

Counts per image, for a chain of dense layers in_dim -> widths[0] -> ... (fan-out = the next
layer's width):

    synaptic ops   events into layer k times its width: for the first layer the non-zero
                   graded input values (currents arrive as graded messages every step), for
                   later layers the previous layer's spikes
    neuron updates every neuron of every layer, every step (Loihi updates them all)
    messages       every event delivered to a layer: the graded inputs and the spikes of every
                   layer but the last (whose spikes leave the chip for the host)

SNN energy on the neuromorphic profile: synaptic ops * E_synop + neuron updates * E_neuron +
messages * (E_spike + E_tile_hop). The ANN-equivalent is the same layers run once per token as
an ANN (multiply-accumulates in_width * out_width) at the ANN profile's E_MAC, and the SNN's own
operations on that profile are the first layer's MACs every step plus accumulates for spikes.

Capacity: a neuromorphic profile may give the chip's published capacity (`capacity`:
neurons, synapses and cores per chip); `chip_fit` compares the encoder's neurons and dense
synapses with it. A profile whose per-operation figures are borrowed from another chip says
so in `per_operation_basis` (loihi2.json: Intel has published none for Loihi 2), and the report
prints it beside the energy.

Latency on the neuromorphic profile: the simulator streams the image's token rows one after
another, T steps each, so an image takes rows * T steps (plus the pipeline's fill, one step
per hop, once per run); one step is modelled as a single core doing the step's synaptic ops
and neuron updates serially, plus a barrier sync: an upper bound for a chip that spreads the
layers over cores.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ash_neuro.errors import AshError

PROFILES = Path(__file__).resolve().parent / "energy_profiles"
NEUROMORPHIC_FIGURES = (
    "synaptic_op_pj",
    "neuron_update_pj",
    "spike_message_pj",
    "tile_hop_pj",
    "synaptic_op_ns",
    "neuron_update_ns",
    "barrier_sync_ns",
)
ANN_FIGURES = ("mac_pj", "accumulate_pj")
CAPACITY_FIGURES = ("neurons_per_chip", "synapses_per_chip", "neuron_cores_per_chip")
KIND_FIGURES = {"neuromorphic": NEUROMORPHIC_FIGURES, "ann": ANN_FIGURES}


class ProfileError(AshError):
    """A hardware profile file is missing, malformed or lacks a figure or its source."""


@dataclass(frozen=True)
class HardwareProfile:
    """Per-operation figures of one piece of hardware, each with its published source."""

    name: str
    kind: str
    description: str
    values: dict[str, float]
    sources: dict[str, str]
    capacity: dict[str, float] = field(default_factory=dict)
    capacity_sources: dict[str, str] = field(default_factory=dict)
    per_operation_basis: str = ""  # where borrowed per-operation figures come from

    def __getitem__(self, figure: str) -> float:
        return self.values[figure]


def load_profile(name_or_path: str | Path) -> HardwareProfile:
    """A profile by name (`loihi2`, `loihi`, `ann_45nm`) or by path to its JSON file,
    validated."""
    path = Path(name_or_path)
    if path.suffix != ".json":
        path = PROFILES / f"{name_or_path}.json"
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in PROFILES.glob("*.json")))
        raise ProfileError(
            f"no hardware profile {str(name_or_path)!r}: use one of {shipped} "
            "(ash_neuro/energy_profiles) or the path of a profile .json"
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ProfileError(f"cannot read hardware profile {path} ({exc})") from None
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind not in KIND_FIGURES:
        raise ProfileError(f"{path}: 'kind' must be one of {', '.join(KIND_FIGURES)}")
    values, sources = _sourced_figures(path, data.get("figures", {}), KIND_FIGURES[kind])
    capacity, capacity_sources = {}, {}
    if "capacity" in data:
        capacity, capacity_sources = _sourced_figures(path, data["capacity"], CAPACITY_FIGURES)
    return HardwareProfile(
        str(data.get("name", path.stem)),
        kind,
        str(data.get("description", "")),
        values,
        sources,
        capacity,
        capacity_sources,
        str(data.get("per_operation_basis", "")),
    )


def _sourced_figures(
    path: Path, figures: object, names: Sequence[str]
) -> tuple[dict[str, float], dict[str, str]]:
    values, sources = {}, {}
    for figure in names:
        entry = figures.get(figure) if isinstance(figures, dict) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("value"), int | float):
            raise ProfileError(f"{path}: figure {figure!r} has no numeric 'value'")
        if not entry.get("source"):
            raise ProfileError(f"{path}: figure {figure!r} names no published 'source'")
        values[figure], sources[figure] = float(entry["value"]), str(entry["source"])
    return values, sources


@dataclass(frozen=True)
class LayerCounts:
    """One spiking layer's operations per image (averaged over the images of a run)."""

    name: str
    fan_in: int
    width: int
    input_events: float  # graded inputs (first layer) or presynaptic spikes arriving
    spikes: float
    steps: int  # time steps per image (rows * T)

    @property
    def synaptic_ops(self) -> float:
        return self.input_events * self.width

    @property
    def neuron_updates(self) -> float:
        return float(self.width * self.steps)


def layer_counts(
    names: Sequence[str],
    widths: Sequence[int],
    in_dim: int,
    input_events: float,
    spikes: Sequence[float],
    steps: int,
) -> list[LayerCounts]:
    """`LayerCounts` of a chain of layers from the first layer's input events per image and
    every layer's spikes per image."""
    fan_in = [in_dim, *widths[:-1]]
    events = [input_events, *spikes[:-1]]
    return [
        LayerCounts(name, f, w, e, s, steps)
        for name, f, w, e, s in zip(names, fan_in, widths, events, spikes, strict=True)
    ]


@dataclass(frozen=True)
class LayerEnergy:
    """Energy per image of one layer, picojoules, by operation; `ann_pj` the same layer as an
    ANN (one MAC per weight per token) on the ANN profile."""

    name: str
    synaptic_ops: float
    neuron_updates: float
    messages: float
    synaptic_pj: float
    neuron_pj: float
    message_pj: float
    snn_on_ann_pj: float
    ann_macs: float
    ann_pj: float

    @property
    def snn_pj(self) -> float:
        return self.synaptic_pj + self.neuron_pj + self.message_pj


def energy_per_image(
    layers: Sequence[LayerCounts],
    rows_per_image: int,
    chip: HardwareProfile,
    ann: HardwareProfile,
) -> list[LayerEnergy]:
    """Per-layer energy per image on `chip` (neuromorphic) and as an ANN on `ann`.

    The first layer's inputs are graded currents: on the ANN profile they cost a MAC each
    (value times weight) every step; later layers receive binary spikes, an accumulate each.
    """
    if chip.kind != "neuromorphic" or ann.kind != "ann":
        raise ProfileError(f"need a neuromorphic and an ANN profile, got {chip.kind}, {ann.kind}")
    per_message = chip["spike_message_pj"] + chip["tile_hop_pj"]
    out = []
    for index, layer in enumerate(layers):
        ops_cost = ann["mac_pj"] if index == 0 else ann["accumulate_pj"]
        macs = float(layer.fan_in * layer.width * rows_per_image)
        out.append(
            LayerEnergy(
                name=layer.name,
                synaptic_ops=layer.synaptic_ops,
                neuron_updates=layer.neuron_updates,
                messages=layer.input_events,
                synaptic_pj=layer.synaptic_ops * chip["synaptic_op_pj"],
                neuron_pj=layer.neuron_updates * chip["neuron_update_pj"],
                message_pj=layer.input_events * per_message,
                snn_on_ann_pj=layer.synaptic_ops * ops_cost,
                ann_macs=macs,
                ann_pj=macs * ann["mac_pj"],
            )
        )
    return out


def step_time_ns(layers: Sequence[LayerCounts], chip: HardwareProfile) -> float:
    """Modelled time of one step: the average step's synaptic ops and neuron updates done
    serially by one core, plus a barrier sync (an upper bound; see the module docstring)."""
    steps = layers[0].steps
    synops = sum(layer.synaptic_ops for layer in layers) / steps
    updates = sum(layer.neuron_updates for layer in layers) / steps
    return (
        synops * chip["synaptic_op_ns"]
        + updates * chip["neuron_update_ns"]
        + chip["barrier_sync_ns"]
    )


@dataclass(frozen=True)
class ChipFit:
    """The encoder's neurons and (dense) synapses against one chip's published capacity."""

    neurons: float
    synapses: float
    neurons_per_chip: float
    synapses_per_chip: float

    @property
    def neuron_share(self) -> float:
        return self.neurons / self.neurons_per_chip

    @property
    def synapse_share(self) -> float:
        return self.synapses / self.synapses_per_chip

    @property
    def fits_one_chip(self) -> bool:
        return bool(self.neuron_share <= 1 and self.synapse_share <= 1)

    def to_dict(self) -> dict[str, float | bool]:
        return {
            "neurons": self.neurons,
            "synapses": self.synapses,
            "neurons_per_chip": self.neurons_per_chip,
            "synapses_per_chip": self.synapses_per_chip,
            "neuron_share": self.neuron_share,
            "synapse_share": self.synapse_share,
            "fits_one_chip": self.fits_one_chip,
        }


def chip_fit(layers: Sequence[LayerCounts], chip: HardwareProfile) -> ChipFit | None:
    """The encoder's neurons and (dense) synapses against one chip's published capacity;
    None when the profile gives no capacity. Token rows are streamed through one copy of the
    network, so one copy is what has to fit."""
    if not chip.capacity:
        return None
    return ChipFit(
        neurons=float(sum(layer.width for layer in layers)),
        synapses=float(sum(layer.fan_in * layer.width for layer in layers)),
        neurons_per_chip=chip.capacity["neurons_per_chip"],
        synapses_per_chip=chip.capacity["synapses_per_chip"],
    )
