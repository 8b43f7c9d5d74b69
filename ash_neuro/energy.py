"""Energy and latency estimates of the spiking encoder from its measured activity.

ESTIMATES, NOT MEASUREMENTS: operation counts come from the simulation's actual spikes; each
count is multiplied by a per-operation figure of a hardware profile, a data file in
`ash_neuro/energy_profiles/` whose every figure names its published source. Nothing here is
read from a chip. Standard library only: records and reports read it without torch or Lava.

What is counted, per image and per spiking population (`LayerCounts`, one per LIF layer):

    input events   what arrives at the population: the graph input's non-zero values for the
                   first population (graded currents every step; the spikes of a poisson
                   coding), the previous population's spikes for the others
    synaptic ops   input events times the synapses each reaches: the population's width for a
                   dense connection, 1 for the one-to-one connection that delivers the host's
                   currents when the first Affine runs on the host
    neuron updates every neuron of the population, every step (Loihi updates them all), split
                   into ACTIVE and INACTIVE updates. Davies et al. 2018 (Table 2) price both
                   without defining them; here an update is active in a step where the neuron
                   receives synaptic input (an event reached its token row: a dense connection
                   delivers every event of the row to every neuron, a one-to-one connection
                   the neuron's own event) or where it spikes, and inactive otherwise (decay
                   and bias only)
    messages       the input events again: each is one spike message into the population's
                   core (the last population's spikes leave the chip for the host, uncounted)
    learning       synaptic updates of on-chip learning: none in inference (0 x the STDP
                   figure, kept in the profile so that the model is complete)

Where the first layer runs (`first_layer`, the export contract's): on the chip (its Affine is
the first connection, graded input x dense weights every step) or on the host (`HostWork`: the
Affine computed once per token for the constant currents of the current coding, its
multiply-accumulates; once per step for the spikes of the poisson coding, an accumulate per
input spike and output), its currents reaching the first population one-to-one.

Three conventions, each stated with its figure:
- Loihi-class: the chip's events on a neuromorphic profile (synaptic ops x E_synop + active and
  inactive updates x their figures + messages x (within-tile spike + tile hops x the mean
  E-W/N-S hop energy)) plus the host's work priced as INT8 arithmetic (the chip runs integers,
  and so does the host that feeds it);
- 45 nm FP32 and 45 nm INT8 (Horowitz 2014; arithmetic only, the SNN literature's
  convention): the SNN's arithmetic, the host's MACs and accumulates and every chip synaptic op
  as a MAC when its event carries a value (graded) or an accumulate when it is a spike, beside
  the ANN-equivalent: the same Affine layers run once per token, in_width x out_width MACs.
  fixed_pt deployments compare fairly with the INT8 column.

Mapping and time (`ChipMapping`, `step_time_ns`). `copies` copies of the encoder run side by
side (the token-parallel layout: one per token row; the streaming layout: one). Each copy of
each population gets a core of its own while the chip has cores to spare (the placement that
runs the copies in parallel), and never fewer cores than hold all the neurons and synapses (a
core holds the chip's neurons and synapses divided by its cores); `cores_per_tile` cores to a
tile. A message costs
one within-tile spike, plus one tile hop (mean of E-W and N-S) when the encoder spans more than
one tile (a copy's populations then sit on neighbouring tiles: an estimate, the chip's
placement is not modelled). A step takes the busiest core's work, the step's synaptic ops and
neuron updates divided evenly over the cores in use (the serial time of one core for one copy),
or the step's messages over the tiles' spike bandwidth if that is longer, plus the barrier
sync, interpolated linearly in the number of tiles in use between Table 2's 113 ns (1 tile) and
465 ns (32 tiles) (Table 2 gives the range only). An image takes T steps of the stream in the
token-parallel layout (its first output T + depth steps after its input: the chip latency of
one image), rows x T in the streaming layout.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ash_neuro.errors import AshError

PROFILES = Path(__file__).resolve().parent / "energy_profiles"
NEUROMORPHIC_FIGURES = (
    "synaptic_op_pj",
    "synaptic_op_ns",
    "synaptic_update_pj",
    "synaptic_update_ns",
    "neuron_update_active_pj",
    "neuron_update_active_ns",
    "neuron_update_inactive_pj",
    "neuron_update_inactive_ns",
    "spike_within_tile_pj",
    "tile_hop_ew_pj",
    "tile_hop_ns_pj",
    "barrier_sync_one_tile_ns",
    "barrier_sync_all_tiles_ns",
    "barrier_sync_all_tiles",
    "spike_bandwidth_per_tile_gspikes",
)
ANN_FIGURES = ("mac_pj", "accumulate_pj")
CAPACITY_FIGURES = (
    "neurons_per_chip",
    "synapses_per_chip",
    "neuron_cores_per_chip",
    "cores_per_tile",
)
KIND_FIGURES = {"neuromorphic": NEUROMORPHIC_FIGURES, "ann": ANN_FIGURES}
LAYOUTS = ("token_parallel", "streaming")


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
    """A profile by name (`loihi2`, `loihi`, `ann_45nm`, `ann_45nm_int8`) or by path to its
    JSON file, validated."""
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
    """One spiking population's operations per image (averaged over the images of a run), as
    the module docstring defines them.

    `ann_fan_in`: the fan-in of the Affine in front of it in the network (its ANN-equivalent
    is `ann_fan_in * width` MACs per token row); `synapses_per_event`: the synapses one input
    event reaches on the chip (`width` dense, 1 one-to-one); `synapses`: the connection's
    synapses per copy of the encoder; `graded`: input events carry values (a MAC each on the
    45 nm conventions) rather than being spikes (an accumulate each).
    """

    name: str
    width: int
    ann_fan_in: int
    synapses_per_event: int
    synapses: int
    input_events: float
    graded: bool
    spikes: float
    neuron_updates: float
    active_updates: float

    @property
    def synaptic_ops(self) -> float:
        return self.input_events * self.synapses_per_event

    @property
    def inactive_updates(self) -> float:
        return self.neuron_updates - self.active_updates


@dataclass(frozen=True)
class HostWork:
    """The first Affine computed on the host, per image: multiply-accumulates (graded inputs)
    and accumulates (binary inputs); zero when the first layer runs on the chip."""

    macs: float = 0.0
    accumulates: float = 0.0

    def pj(self, ann: HardwareProfile) -> float:
        return self.macs * ann["mac_pj"] + self.accumulates * ann["accumulate_pj"]


@dataclass(frozen=True)
class LayerEnergy:
    """Energy per image of one population, picojoules: on the chip by operation (`snn_pj`),
    its synaptic ops on the two 45 nm conventions, and the same layer as an ANN (one MAC per
    weight per token) on each; `learning_updates` (none in inference) and their energy."""

    name: str
    synaptic_ops: float
    neuron_updates: float
    active_updates: float
    messages: float
    synaptic_pj: float
    neuron_pj: float
    message_pj: float
    snn_on_ann_pj: float
    snn_on_int8_pj: float
    ann_macs: float
    ann_pj: float
    ann_int8_pj: float
    learning_updates: float = 0.0
    learning_pj: float = 0.0

    @property
    def snn_pj(self) -> float:
        return self.synaptic_pj + self.neuron_pj + self.message_pj + self.learning_pj


def energy_per_image(
    layers: Sequence[LayerCounts],
    rows_per_image: int,
    chip: HardwareProfile,
    ann: HardwareProfile,
    int8: HardwareProfile,
    hops_per_message: float = 0.0,
) -> list[LayerEnergy]:
    """Per-layer energy per image on `chip` (neuromorphic), on the FP32 (`ann`) and INT8
    (`int8`) conventions, and as an ANN on both; every message crosses `hops_per_message`
    tile hops (`ChipMapping`)."""
    if chip.kind != "neuromorphic" or ann.kind != "ann" or int8.kind != "ann":
        kinds = (chip.kind, ann.kind, int8.kind)
        raise ProfileError(f"need a neuromorphic and two ANN profiles, got {kinds}")
    hop = (chip["tile_hop_ew_pj"] + chip["tile_hop_ns_pj"]) / 2
    per_message = chip["spike_within_tile_pj"] + hops_per_message * hop
    out = []
    for layer in layers:
        op = "mac_pj" if layer.graded else "accumulate_pj"
        macs = float(layer.ann_fan_in * layer.width * rows_per_image)
        out.append(
            LayerEnergy(
                name=layer.name,
                synaptic_ops=layer.synaptic_ops,
                neuron_updates=layer.neuron_updates,
                active_updates=layer.active_updates,
                messages=layer.input_events,
                synaptic_pj=layer.synaptic_ops * chip["synaptic_op_pj"],
                neuron_pj=layer.active_updates * chip["neuron_update_active_pj"]
                + layer.inactive_updates * chip["neuron_update_inactive_pj"],
                message_pj=layer.input_events * per_message,
                snn_on_ann_pj=layer.synaptic_ops * ann[op],
                snn_on_int8_pj=layer.synaptic_ops * int8[op],
                ann_macs=macs,
                ann_pj=macs * ann["mac_pj"],
                ann_int8_pj=macs * int8["mac_pj"],
            )
        )
    return out


@dataclass(frozen=True)
class ChipMapping:
    """`copies` copies of the encoder (`neurons`, `synapses` in all) spread over `cores`
    neuron cores on `tiles` tiles (`chip_mapping`); each message crosses `hops_per_message`
    tile hops and each step ends with a barrier sync of `barrier_sync_ns`."""

    copies: int
    neurons: float
    synapses: float
    cores: int
    tiles: int
    hops_per_message: float
    barrier_sync_ns: float

    def to_dict(self) -> dict[str, float | int]:
        return {
            "copies": self.copies,
            "neurons": self.neurons,
            "synapses": self.synapses,
            "cores": self.cores,
            "tiles": self.tiles,
            "hops_per_message": self.hops_per_message,
            "barrier_sync_ns": self.barrier_sync_ns,
        }


def barrier_sync_ns(tiles: int, chip: HardwareProfile) -> float:
    """Table 2's mesh-wide barrier time for `tiles` tiles in use, linear between its 1-tile and
    all-tile ends (the paper gives the range only); beyond them, the all-tile figure (several
    chips synchronise over a slower path, not modelled)."""
    low, high = chip["barrier_sync_one_tile_ns"], chip["barrier_sync_all_tiles_ns"]
    span = chip["barrier_sync_all_tiles"] - 1
    share = min(max(tiles - 1, 0) / span, 1.0) if span > 0 else 1.0
    return low + (high - low) * share


def chip_mapping(layers: Sequence[LayerCounts], copies: int, chip: HardwareProfile) -> ChipMapping:
    """The cores and tiles `copies` copies of the encoder take on `chip` (module docstring):
    a core per population copy up to the chip's cores, never fewer than hold them all; a
    profile without capacity figures is taken as one core on one tile."""
    neurons = float(copies * sum(layer.width for layer in layers))
    synapses = float(copies * sum(layer.synapses for layer in layers))
    cores = 1
    if chip.capacity:
        per_core = chip.capacity["neuron_cores_per_chip"]
        spread = min(copies * len(layers), int(per_core))
        cores = max(
            1,
            spread,
            math.ceil(neurons / (chip.capacity["neurons_per_chip"] / per_core)),
            math.ceil(synapses / (chip.capacity["synapses_per_chip"] / per_core)),
        )
    tiles = math.ceil(cores / chip.capacity.get("cores_per_tile", 1)) if chip.capacity else 1
    hops = 0.0 if tiles == 1 else 1.0
    return ChipMapping(copies, neurons, synapses, cores, tiles, hops, barrier_sync_ns(tiles, chip))


def step_time_ns(
    layers: Sequence[LayerCounts],
    chip: HardwareProfile,
    mapping: ChipMapping,
    steps_per_image: int,
) -> float:
    """Modelled time of one step when an image's work is spread over `steps_per_image` steps:
    the busiest core's share of the synaptic ops and (active, inactive) neuron updates, or the
    messages over the tiles' spike bandwidth if longer, plus the barrier sync."""
    work = sum(
        layer.synaptic_ops * chip["synaptic_op_ns"]
        + layer.active_updates * chip["neuron_update_active_ns"]
        + layer.inactive_updates * chip["neuron_update_inactive_ns"]
        for layer in layers
    )
    messages = sum(layer.input_events for layer in layers)
    compute = work / steps_per_image / mapping.cores
    # Gspike/s is spikes per ns
    traffic = (
        messages / steps_per_image / (mapping.tiles * chip["spike_bandwidth_per_tile_gspikes"])
    )
    return max(compute, traffic) + mapping.barrier_sync_ns


@dataclass(frozen=True)
class ChipFit:
    """The encoder's neurons and synapses (every copy of it) against one chip's published
    capacity."""

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


def chip_fit(
    layers: Sequence[LayerCounts], chip: HardwareProfile, copies: int = 1
) -> ChipFit | None:
    """The neurons and synapses of `copies` copies of the encoder (the token-parallel layout
    holds one per token row, the streaming layout one) against the chip's published capacity;
    None when the profile gives no capacity."""
    if not chip.capacity:
        return None
    return ChipFit(
        neurons=float(copies * sum(layer.width for layer in layers)),
        synapses=float(copies * sum(layer.synapses for layer in layers)),
        neurons_per_chip=chip.capacity["neurons_per_chip"],
        synapses_per_chip=chip.capacity["synapses_per_chip"],
    )
