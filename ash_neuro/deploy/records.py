"""What a deployment measured, as typed records: report.json is `DeploymentRecord.to_dict()`.

Frozen dataclasses that check themselves (`__post_init__`: a field out of range is a one-line
`DeployError`) and write themselves as JSON (`to_dict`) under the keys report.json has always
had, so a machine reader is unaffected. Figures a record derives (energy totals, ms per step,
the latency sentence) are properties, computed as report.json has always computed them.
Energy reuses `ash_neuro.energy`'s records (`HardwareProfile`, `LayerEnergy`, `ChipFit`) and a
fixed_pt mode carries the harness's `QuantisationReport`; both are standard library, like this
module, so reading a record needs neither torch nor Lava.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ash_neuro.deploy import DeployError
from ash_neuro.energy import (
    LAYOUTS,
    ChipFit,
    ChipMapping,
    HardwareProfile,
    HostWork,
    LayerEnergy,
)
from hardware.quantisation_report import QuantisationReport

UJ_PER_PJ = 1e-6  # energies are computed in picojoules (ash_neuro.energy), reported in uJ


@dataclass(frozen=True)
class SpikeAgreement:
    """The fraction of equal (step, row, neuron) spike entries of two runs on identical inputs,
    per layer (`layers`, in layer order) and over every layer's entries together (`overall`,
    JSON key `all`)."""

    layers: Mapping[str, float]
    overall: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", dict(self.layers))
        problems = _require(_named("agreement", self.to_dict()), _fraction, "in [0, 1]")
        if not self.layers or "all" in self.layers:
            problems.append(f"agreement needs layers other than 'all', got {list(self.layers)}")
        _raise_if(problems)

    def to_dict(self) -> dict[str, float]:
        return {**self.layers, "all": self.overall}


@dataclass(frozen=True)
class NorseRecord:
    """The encoder in Norse (PyTorch): the task's metrics (percent) with its spikes, each
    layer's firing rate (spikes per neuron per step), its wall time per image (seconds) and
    each layer's (silent, saturated) shares of neurons (`neuron_shares`: never firing, firing
    at every step, over every deployed token row; `silent_and_saturated`)."""

    metrics: Mapping[str, float]
    firing_rates: Mapping[str, float]
    seconds_per_image: float
    neuron_shares: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", dict(self.metrics))
        object.__setattr__(self, "firing_rates", dict(self.firing_rates))
        object.__setattr__(self, "neuron_shares", _shares(self.neuron_shares))
        problems = _require(_named("metric", self.metrics), _real, "a number")
        problems += _require(_named("firing rate", self.firing_rates), _fraction, "in [0, 1]")
        problems += _share_problems(self.neuron_shares)
        seconds = {"seconds_per_image": self.seconds_per_image}
        _raise_if(problems + _require(seconds, _non_negative, "a finite number >= 0"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": dict(self.metrics),
            "firing_rates": dict(self.firing_rates),
            "seconds_per_image": self.seconds_per_image,
            "neuron_shares": _shares_dict(self.neuron_shares),
        }


@dataclass(frozen=True)
class SimulatorTiming:
    """Wall time of Lava's CPU simulator over every chunk of one mode's run, not chip time:
    building the networks (`build_s`), stepping them (`run_s`, `steps` steps in all) and the
    whole exchange with the harness (`wall_s`); per image, that wall time and the floor the
    step time alone sets (the image's steps at the measured seconds per step)."""

    build_s: float
    run_s: float
    wall_s: float
    steps: int
    seconds_per_image: float
    step_floor_seconds_per_image: float
    label: ClassVar[str] = "Lava CPU simulator wall time, not chip time"

    def __post_init__(self) -> None:
        times = {"build_s": self.build_s, "run_s": self.run_s, "wall_s": self.wall_s}
        times |= {"seconds_per_image": self.seconds_per_image}
        times |= {"step_floor_seconds_per_image": self.step_floor_seconds_per_image}
        problems = _require(times, _non_negative, "a finite number >= 0")
        _raise_if(problems + _require({"steps": self.steps}, _count(1), "a positive integer"))

    @classmethod
    def of_run(
        cls,
        build_s: float,
        run_s: float,
        wall_s: float,
        steps: int,
        images: int,
        steps_per_image: int,
    ) -> SimulatorTiming:
        """The timing of a run of `images` images of `steps_per_image` steps each (rows x T
        streamed, T with the rows side by side)."""
        floor = run_s / steps * steps_per_image
        return cls(build_s, run_s, wall_s, steps, wall_s / images, floor)

    @property
    def ms_per_step(self) -> float:
        return 1000 * self.run_s / self.steps

    @property
    def images_per_s(self) -> float:
        return 1 / self.seconds_per_image if self.seconds_per_image > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        return {
            "build_s": self.build_s,
            "run_s": self.run_s,
            "wall_s": self.wall_s,
            "steps": self.steps,
            "label": self.label,
            "ms_per_step": self.ms_per_step,
            "seconds_per_image": self.seconds_per_image,
            "step_floor_seconds_per_image": self.step_floor_seconds_per_image,
            "images_per_s": self.images_per_s,
        }


@dataclass(frozen=True)
class EnergyRecord:
    """Energy and modelled chip latency per image, from one run's measured activity: estimates
    from published per-operation figures (`ash_neuro.energy`), not measurements.

    `layers`: each spiking population's operations and energy on the `chip` profile, its
    arithmetic on the 45 nm FP32 (`ann`) and INT8 (`int8`) conventions, and the same layer as
    an ANN on both (picojoules); `host`: the first Affine's arithmetic when it runs on the host
    (zero on the chip), priced as INT8 beside the chip (the chip runs integers) and on each
    45 nm convention; `layout`: how the chip holds an image's token rows (`token_parallel`: one
    copy of the encoder per row, all at once; `streaming`: one copy, row after row), `mapping`
    the cores and tiles that takes, `chip_fit` the copies against the chip's capacity (None
    when the profile publishes none). An image occupies `steps_per_image` steps of the stream
    (T, or rows x T streaming) of `step_time_ns` each on the chip model, its output leaving
    `pipeline_fill_steps` steps after the last (one per hop): `latency_steps_per_image`.
    """

    chip: HardwareProfile
    ann: HardwareProfile
    int8: HardwareProfile
    layers: tuple[LayerEnergy, ...]
    host: HostWork
    layout: str
    mapping: ChipMapping
    chip_fit: ChipFit | None
    steps_per_image: int
    pipeline_fill_steps: int
    step_time_ns: float
    dt: float
    estimate: ClassVar[str] = (
        "modelled from published per-operation figures, not measured on a chip"
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        kinds = (self.chip.kind, self.ann.kind, self.int8.kind)
        problems = [] if self.layers else ["energy needs at least one layer"]
        if kinds != ("neuromorphic", "ann", "ann"):
            problems.append(f"energy needs a neuromorphic and two ANN profiles, got {kinds}")
        if self.layout not in LAYOUTS:
            problems.append(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        steps = {"steps_per_image": self.steps_per_image}
        problems += _require(steps, _count(1), "a positive integer")
        fill = {"pipeline_fill_steps": self.pipeline_fill_steps}
        problems += _require(fill, _count(0), "an integer >= 0")
        times = {"step_time_ns": self.step_time_ns, "dt": self.dt}
        problems += _require(times, _positive, "a positive number")
        host = {"host macs": self.host.macs, "host accumulates": self.host.accumulates}
        problems += _require(host, _non_negative, "a finite number >= 0")
        for layer in self.layers:
            figures = {f"{layer.name} {k}": getattr(layer, k) for k in ENERGY_FIGURES}
            problems += _require(figures, _non_negative, "a finite number >= 0")
        _raise_if(problems)

    @property
    def host_uj_per_image(self) -> float:
        """The host's first Affine priced as INT8 (beside the chip's integer events)."""
        return self.host.pj(self.int8) * UJ_PER_PJ

    @property
    def snn_uj_per_image(self) -> float:
        """Loihi-class: the chip's events plus the host's work (`host_uj_per_image`)."""
        return sum(e.snn_pj for e in self.layers) * UJ_PER_PJ + self.host_uj_per_image

    @property
    def snn_ops_on_ann_profile_uj_per_image(self) -> float:
        """45 nm FP32: the SNN's arithmetic, the host's included."""
        return (sum(e.snn_on_ann_pj for e in self.layers) + self.host.pj(self.ann)) * UJ_PER_PJ

    @property
    def snn_ops_on_int8_uj_per_image(self) -> float:
        """45 nm INT8: the SNN's arithmetic, the host's included."""
        return (sum(e.snn_on_int8_pj for e in self.layers) + self.host.pj(self.int8)) * UJ_PER_PJ

    @property
    def ann_uj_per_image(self) -> float:
        return sum(e.ann_pj for e in self.layers) * UJ_PER_PJ

    @property
    def ann_int8_uj_per_image(self) -> float:
        return sum(e.ann_int8_pj for e in self.layers) * UJ_PER_PJ

    @property
    def latency_steps_per_image(self) -> int:
        return self.steps_per_image + self.pipeline_fill_steps

    @property
    def step_time_us(self) -> float:
        return self.step_time_ns * 1e-3

    @property
    def chip_latency_ms_per_image(self) -> float:
        """From an image's first input to its last output on the chip model."""
        return self.latency_steps_per_image * self.step_time_ns * 1e-6

    @property
    def chip_images_per_s(self) -> float:
        """Images back to back on the chip model: one every `steps_per_image` steps."""
        return 1e9 / (self.steps_per_image * self.step_time_ns)

    @property
    def biological_time_ms_per_image(self) -> float:
        return self.steps_per_image * self.dt * 1e3

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimate": self.estimate,
            "chip": self.chip.name,
            "per_operation_basis": self.chip.per_operation_basis,
            "chip_fit": None if self.chip_fit is None else self.chip_fit.to_dict(),
            "profiles": {
                p.name: {
                    "description": p.description,
                    "values": p.values,
                    "sources": p.sources,
                    "capacity": p.capacity,
                    "capacity_sources": p.capacity_sources,
                }
                for p in (self.chip, self.ann, self.int8)
            },
            "layers": [
                {
                    "name": e.name,
                    "synaptic_ops": e.synaptic_ops,
                    "neuron_updates": e.neuron_updates,
                    "messages": e.messages,
                    "synaptic_uj": e.synaptic_pj * UJ_PER_PJ,
                    "neuron_uj": e.neuron_pj * UJ_PER_PJ,
                    "message_uj": e.message_pj * UJ_PER_PJ,
                    "snn_uj": e.snn_pj * UJ_PER_PJ,
                    "snn_ops_on_ann_profile_uj": e.snn_on_ann_pj * UJ_PER_PJ,
                    "ann_macs": e.ann_macs,
                    "ann_uj": e.ann_pj * UJ_PER_PJ,
                    # added with the INT8 convention and active/inactive updates
                    "active_updates": e.active_updates,
                    "learning_uj": e.learning_pj * UJ_PER_PJ,
                    "snn_ops_on_int8_uj": e.snn_on_int8_pj * UJ_PER_PJ,
                    "ann_int8_uj": e.ann_int8_pj * UJ_PER_PJ,
                }
                for e in self.layers
            ],
            "snn_uj_per_image": self.snn_uj_per_image,
            "snn_ops_on_ann_profile_uj_per_image": self.snn_ops_on_ann_profile_uj_per_image,
            "ann_uj_per_image": self.ann_uj_per_image,
            "steps_per_image": self.steps_per_image,
            "pipeline_fill_steps": self.pipeline_fill_steps,
            "step_time_us": self.step_time_us,
            "chip_latency_ms_per_image": self.chip_latency_ms_per_image,
            "biological_time_ms_per_image": self.biological_time_ms_per_image,
            # added with the layouts, the host's first layer and the INT8 convention
            "layout": self.layout,
            "mapping": self.mapping.to_dict(),
            "host": {
                "macs": self.host.macs,
                "accumulates": self.host.accumulates,
                "uj": self.host_uj_per_image,
            },
            "snn_ops_on_int8_uj_per_image": self.snn_ops_on_int8_uj_per_image,
            "ann_int8_uj_per_image": self.ann_int8_uj_per_image,
            "latency_steps_per_image": self.latency_steps_per_image,
            "chip_images_per_s": self.chip_images_per_s,
        }


ENERGY_FIGURES = (
    "synaptic_ops",
    "neuron_updates",
    "active_updates",
    "messages",
    "snn_pj",
    "snn_on_ann_pj",
    "snn_on_int8_pj",
    "ann_macs",
    "ann_pj",
    "ann_int8_pj",
)


@dataclass(frozen=True)
class LavaModeRecord:
    """The encoder on Lava in one mode: the task's metrics (percent) with Lava's spikes, their
    agreement with Norse's, firing rates, the pipeline latency the harness removed per layer
    (steps), the simulator's time, the quantisation report (fixed_pt; None in floating_pt),
    the energy estimate of the run's activity and each layer's (silent, saturated) shares of
    neurons (as `NorseRecord`'s)."""

    metrics: Mapping[str, float]
    agreement: SpikeAgreement
    firing_rates: Mapping[str, float]
    pipeline_latency_steps: Mapping[str, int]
    simulator: SimulatorTiming
    quantisation: QuantisationReport | None
    energy: EnergyRecord
    neuron_shares: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("metrics", "firing_rates", "pipeline_latency_steps"):
            object.__setattr__(self, name, dict(getattr(self, name)))
        object.__setattr__(self, "neuron_shares", _shares(self.neuron_shares))
        problems = _require(_named("metric", self.metrics), _real, "a number")
        problems += _share_problems(self.neuron_shares)
        problems += _require(_named("firing rate", self.firing_rates), _fraction, "in [0, 1]")
        latency = _named("pipeline latency of", self.pipeline_latency_steps)
        problems += _require(latency, _count(1), "a positive number of steps")
        layers = list(self.firing_rates)
        for what, names in (
            ("agreement", list(self.agreement.layers)),
            ("pipeline latency", list(self.pipeline_latency_steps)),
            ("energy", [e.name for e in self.energy.layers]),
        ):
            if names != layers:
                problems.append(f"{what} is of layers {names}, the firing rates of {layers}")
        _raise_if(problems)

    @property
    def latency_handling(self) -> str:
        return (
            "Lava delivers each Dense hop one step late; the harness removed "
            f"{self.pipeline_latency_steps} steps per layer, so spikes are compared step for step"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": dict(self.metrics),
            "agreement": self.agreement.to_dict(),
            "firing_rates": dict(self.firing_rates),
            "pipeline_latency_steps": dict(self.pipeline_latency_steps),
            "latency_handling": self.latency_handling,
            "simulator": self.simulator.to_dict(),
            "quantisation": None if self.quantisation is None else self.quantisation.text(),
            "energy": self.energy.to_dict(),
            "neuron_shares": _shares_dict(self.neuron_shares),
        }


@dataclass(frozen=True)
class DeploymentRecord:
    """One deployment: `checkpoint` and its encoder `graph` (JSON key `nir`), the `task` on
    `split` (its `main_metric`), `n_images` images and the `n_examples` examples whose images are
    all among them, `rows_per_image` token rows of `time_steps` steps of `dt` seconds, the
    spiking layers' widths in order (`layer_sizes`), the Norse side, and one record per Lava
    mode run (`modes`, by mode name)."""

    checkpoint: Path
    graph: Path
    task: str
    split: str
    main_metric: str
    n_images: int
    n_examples: int
    rows_per_image: int
    time_steps: int
    dt: float
    layer_sizes: Mapping[str, int]
    norse: NorseRecord
    modes: Mapping[str, LavaModeRecord]

    def __post_init__(self) -> None:
        object.__setattr__(self, "checkpoint", Path(self.checkpoint))
        object.__setattr__(self, "graph", Path(self.graph))
        object.__setattr__(self, "layer_sizes", dict(self.layer_sizes))
        object.__setattr__(self, "modes", dict(self.modes))
        sizes = {"n_images": self.n_images, "n_examples": self.n_examples}
        sizes |= {"rows_per_image": self.rows_per_image, "time_steps": self.time_steps}
        sizes |= _named("width of", self.layer_sizes)
        problems = _require(sizes, _count(1), "a positive integer")
        problems += _require({"dt": self.dt}, _positive, "a positive number of seconds")
        if self.main_metric not in self.norse.metrics:
            problems.append(f"main_metric {self.main_metric!r} is not among the Norse metrics")
        layers = list(self.layer_sizes)
        if list(self.norse.firing_rates) != layers:
            problems.append(f"Norse's layers {list(self.norse.firing_rates)} are not {layers}")
        for mode, result in self.modes.items():
            if list(result.firing_rates) != layers:
                problems.append(f"{mode}'s layers {list(result.firing_rates)} are not {layers}")
            if list(result.metrics) != list(self.norse.metrics):
                problems.append(f"{mode}'s metrics {list(result.metrics)} are not Norse's")
        _raise_if(problems)

    def to_dict(self) -> dict[str, Any]:
        """report.json."""
        return {
            "checkpoint": str(self.checkpoint),
            "nir": str(self.graph),
            "task": self.task,
            "split": self.split,
            "main_metric": self.main_metric,
            "n_images": self.n_images,
            "n_examples": self.n_examples,
            "rows_per_image": self.rows_per_image,
            "time_steps": self.time_steps,
            "dt": self.dt,
            "layer_sizes": dict(self.layer_sizes),
            "norse": self.norse.to_dict(),
            "modes": {mode: result.to_dict() for mode, result in self.modes.items()},
        }


def _shares(shares: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    return {name: tuple(pair) for name, pair in dict(shares).items()}


def _shares_dict(shares: Mapping[str, tuple[float, float]]) -> dict[str, dict[str, float]]:
    return {name: {"silent": a, "saturated": b} for name, (a, b) in shares.items()}


def _share_problems(shares: Mapping[str, tuple[float, ...]]) -> list[str]:
    values = {}
    for name, pair in shares.items():
        if len(pair) != 2:
            return [f"neuron shares of {name} must be (silent, saturated), got {pair!r}"]
        values |= {f"silent share of {name}": pair[0], f"saturated share of {name}": pair[1]}
    return _require(values, _fraction, "in [0, 1]")


def _raise_if(problems: list[str]) -> None:
    if problems:
        raise DeployError("invalid deployment record: " + "; ".join(problems))


def _require(values: Mapping[str, Any], holds: Callable[[Any], bool], what: str) -> list[str]:
    """One problem per value for which `holds` is false: '<name> must be <what>, got <value>'."""
    return [f"{name} must be {what}, got {v!r}" for name, v in values.items() if not holds(v)]


def _named(prefix: str, values: Mapping[str, Any]) -> dict[str, Any]:
    return {f"{prefix} {name}": value for name, value in values.items()}


def _real(value: Any) -> bool:
    """A number (a metric may be NaN where it is undefined)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _non_negative(value: Any) -> bool:
    return _real(value) and math.isfinite(value) and value >= 0


def _positive(value: Any) -> bool:
    return _non_negative(value) and value > 0


def _fraction(value: Any) -> bool:
    return _non_negative(value) and value <= 1


def _count(least: int) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= least
