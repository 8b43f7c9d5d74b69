"""The fixed_pt quantisation report as a record: what `quantize.quantize_for_loihi` rounded, by
how much, and how close each layer's 24-bit current came to wrapping (`quantize.current_overflow`).

Standard library only (plus `ash_neuro.errors`), so both environments import it: simulate.py
(Lava's) fills it in and prints its lines, io.py stores it in out.h5 as JSON, and the main
environment reads it back (`LavaResult.quantisation`), adds the reports of the chunks of one
run (`+`) and renders the same lines in the deployment report (`lines`).

Rounding errors are shares of what they round: a connection's largest weight error of its
largest |weight|, the input's of the largest |input|; the bias's error is in thresholds.
Currents are in Loihi's units of synaptic input (the 24-bit state >> 6).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ash_neuro.errors import AshError

# lava.utils.weightutils.SignMode's names, lower case (this module does not import Lava).
SIGN_MODES = ("null", "mixed", "excitatory", "inhibitory")


class QuantisationReportError(AshError):
    """A quantisation report with a field out of range, or JSON that is not one; one line."""


@dataclass(frozen=True)
class InputQuantisation:
    """The graph input as integers: `scale` integer units per input unit. Binary spikes stay
    0/1 (exact); graded inputs become `bits`-bit signed integers whose largest rounding error
    is `max_error_share` of max |input|."""

    scale: float
    binary: bool
    bits: int
    max_error_share: float = 0.0

    def __post_init__(self) -> None:
        problems = [*_positive("scale", self.scale), *_count("bits", self.bits, least=1)]
        problems += _share("max_error_share", self.max_error_share)
        if self.binary and self.max_error_share:
            problems.append("binary spikes are exact: max_error_share must be 0")
        _raise_if("input", problems)

    def line(self) -> str:
        rounding = (
            "binary spikes (exact)"
            if self.binary
            else f"{self.bits}-bit integers, max error {self.max_error_share:.2%} of max |input|"
        )
        return f"quantise: input x{self.scale:.6g} -> {rounding}"


@dataclass(frozen=True)
class WeightQuantisation:
    """The weights from `source` on Loihi's grid: 8-bit mantissas times 2**`weight_exp`, in
    Lava's `sign_mode`; the largest error is `max_error_share` of the largest |weight|."""

    source: str
    weight_exp: int
    sign_mode: str
    max_error_share: float

    def __post_init__(self) -> None:
        problems = [*_integer("weight_exp", self.weight_exp)]
        problems += _share("max_error_share", self.max_error_share)
        if self.sign_mode not in SIGN_MODES:
            problems.append(f"sign_mode must be one of {', '.join(SIGN_MODES)}")
        _raise_if(f"weights from {self.source!r}", problems)


@dataclass(frozen=True)
class InputCurrent:
    """A layer fed by the graph input: the largest current its calibration inputs drive,
    `peak` (integer units), `share` of the 24-bit range. When the threshold had to be lowered
    by 2**`threshold_shift` for it to fit, `unshifted_peak_thresholds` is that current at the
    first threshold, in thresholds."""

    peak: float
    share: float
    threshold_shift: int = 0
    unshifted_peak_thresholds: float | None = None

    def __post_init__(self) -> None:
        problems = [*_share("peak", self.peak), *_share("share", self.share)]
        shift = _count("threshold_shift", self.threshold_shift)
        problems += shift
        if not shift and (self.threshold_shift > 0) != (self.unshifted_peak_thresholds is not None):
            problems.append("a lowered threshold (and only one) gives unshifted_peak_thresholds")
        _raise_if("input current", problems)


@dataclass(frozen=True)
class LayerQuantisation:
    """One population in Loihi's integers: its incoming `weights`, threshold `vth`, decays
    `dv` and `du` (12-bit; `*_float` the floating-point dt/tau, `*_loihi` what the integer
    decays per step: dv / 4096 and (du + 1) / 4096, as Lava adds one to du), the largest bias
    rounding error in thresholds, and for a layer fed by the graph input its `input_current`.
    `decays`: how many distinct (du, dv) pairs its neurons have; when more than one, the dv/du
    fields are those of the neuron whose decays rounded worst (relative error)."""

    node: str
    kind: str
    weights: tuple[WeightQuantisation, ...]
    vth: int
    dv: int
    dv_float: float
    dv_loihi: float
    du: int
    du_float: float
    du_loihi: float
    max_bias_error: float
    input_current: InputCurrent | None = None
    decays: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", tuple(self.weights))
        problems = [*_count("vth", self.vth, least=1), *_count("decays", self.decays, least=1)]
        for name in ("dv", "du"):
            problems += _count(name, getattr(self, name))
        for name in ("dv_float", "dv_loihi", "du_float", "du_loihi", "max_bias_error"):
            problems += _share(name, getattr(self, name))
        _raise_if(f"node {self.node!r}", problems)

    def lines(self) -> list[str]:
        where = f"node '{self.node}' ({self.kind})"
        lines = [
            f"quantise: {where} <- {w.source}: weight_exp {w.weight_exp:+d} ({w.sign_mode}), "
            f"max weight error {w.max_error_share:.2%} of max |w|"
            for w in self.weights
        ]
        worst = f" (worst of {self.decays} per-neuron decays)" if self.decays > 1 else ""
        lines.append(
            f"quantise: {where}: vth {self.vth}, dv {self.dv} (dt/tau {self.dv_float:.6g} -> "
            f"{self.dv_loihi:.6g}), du {self.du} ({self.du_float:.6g} -> {self.du_loihi:.6g})"
            f"{worst}, max bias error {self.max_bias_error:.2g} thresholds"
        )
        current = self.input_current
        if current is not None and current.threshold_shift:
            lines.append(
                f"quantise: node '{self.node}': threshold lowered by 2**{current.threshold_shift}"
                " so that the largest input current of these inputs "
                f"({current.unshifted_peak_thresholds:.3g} thresholds) fits Loihi's 24-bit current"
            )
        if current is not None:
            lines.append(
                f"quantise: node '{self.node}': largest input current {current.peak:.0f} = "
                f"{current.share:.1%} of Loihi's 24-bit range"
            )
        return lines


@dataclass(frozen=True)
class CurrentOverflow:
    """One layer's current over a run, replayed from its actual inputs: the largest |u| as a
    share of the 24-bit range (`peak_share`, above 1 wraps) and how many of its
    `neuron_steps` (samples x steps x neurons) `wrapped`."""

    peak_share: float
    wrapped: int
    neuron_steps: int

    def __post_init__(self) -> None:
        problems = [*_share("peak_share", self.peak_share)]
        problems += _count("wrapped", self.wrapped) + _count("neuron_steps", self.neuron_steps)
        if not problems and self.wrapped > self.neuron_steps:
            problems.append(f"wrapped {self.wrapped} exceeds neuron_steps {self.neuron_steps}")
        _raise_if("current overflow", problems)

    def __add__(self, other: CurrentOverflow) -> CurrentOverflow:
        """The same layer over two runs: the counts add up, the peak is the larger."""
        return CurrentOverflow(
            max(self.peak_share, other.peak_share),
            self.wrapped + other.wrapped,
            self.neuron_steps + other.neuron_steps,
        )

    def line(self, layer: str) -> str:
        peak = f"peak {self.peak_share:.1%} of Loihi's 24-bit range"
        if self.wrapped:
            return (
                f"quantise: warning: node '{layer}': {self.wrapped} of {self.neuron_steps} "
                f"neuron-steps exceeded the 24-bit current and wrapped ({peak})"
            )
        return f"quantise: node '{layer}': no current overflow in this run ({peak})"


@dataclass(frozen=True)
class QuantisationReport:
    """A fixed_pt run's quantisation: the input's and every layer's rounding (in graph order,
    by graph node), the calibration, and after the run each layer's current `overflow`.

    `calibration_samples`: the samples of a separate calibration set (simulate.py's
    `--quantise-on`) the integers were chosen from; None when they came from the run's own
    inputs. `overflow` is empty until the run has been checked (`with_overflow`).
    """

    inputs: InputQuantisation
    layers: tuple[LayerQuantisation, ...]
    calibration_samples: int | None = None
    overflow: Mapping[str, CurrentOverflow] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "overflow", dict(self.overflow))
        problems = []
        if self.calibration_samples is not None:
            problems += _count("calibration_samples", self.calibration_samples, least=1)
        nodes = [layer.node for layer in self.layers]
        if not nodes or len(set(nodes)) != len(nodes):
            problems.append(f"layers must be named once each, got {nodes}")
        _raise_if("report", problems)

    def parameter_lines(self) -> list[str]:
        """The rounding of every parameter, as simulate.py prints it before the run."""
        lines = []
        if self.calibration_samples is not None:
            lines.append(f"quantise: calibrated on {self.calibration_samples} samples")
        lines.append(self.inputs.line())
        for layer in self.layers:
            lines += layer.lines()
        return lines

    def overflow_lines(self) -> list[str]:
        """One line per layer of the current-overflow check, as printed after the run."""
        return [figures.line(layer) for layer, figures in self.overflow.items()]

    def lines(self) -> list[str]:
        return self.parameter_lines() + self.overflow_lines()

    def text(self) -> str:
        return "\n".join(self.lines())

    def with_overflow(self, overflow: Mapping[str, CurrentOverflow]) -> QuantisationReport:
        return dataclasses.replace(self, overflow=overflow)

    def renamed_overflow(self, names: Mapping[str, str]) -> QuantisationReport:
        """The overflow figures filed under `names[node]`, in the order of `names` (a caller's
        names for the graph's nodes); the parameter lines keep the nodes the quantiser saw."""
        if set(names) != set(self.overflow):
            raise QuantisationReportError(
                f"cannot rename the overflow of {sorted(self.overflow)} by {sorted(names)}"
            )
        return self.with_overflow({name: self.overflow[node] for node, name in names.items()})

    def __add__(self, other: QuantisationReport) -> QuantisationReport:
        """The report of two chunks of one run: the same integers (one calibration), each
        layer's overflow counts summed and its peak the larger."""
        if dataclasses.replace(self, overflow={}) != dataclasses.replace(other, overflow={}):
            raise QuantisationReportError(
                "cannot add the quantisation reports of runs on different integers; calibrate "
                "every chunk on the same inputs (simulate.py --quantise-on)"
            )
        if set(self.overflow) != set(other.overflow):
            raise QuantisationReportError(
                f"cannot add the overflow of layers {sorted(self.overflow)} and "
                f"{sorted(other.overflow)}"
            )
        return self.with_overflow({k: v + other.overflow[k] for k, v in self.overflow.items()})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: nested records as objects, tuples as lists."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantisationReport:
        try:
            layers = [_layer(layer) for layer in data["layers"]]
            overflow = {k: _record(CurrentOverflow, v) for k, v in data["overflow"].items()}
            inputs = _record(InputQuantisation, data["inputs"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise QuantisationReportError(
                f"invalid quantisation report: missing or malformed {exc}"
            ) from None
        return _record(cls, {**data, "inputs": inputs, "layers": layers, "overflow": overflow})

    @classmethod
    def from_json(cls, text: str) -> QuantisationReport:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise QuantisationReportError(
                f"invalid quantisation report: not JSON ({exc})"
            ) from None
        if not isinstance(data, dict):
            raise QuantisationReportError("invalid quantisation report: not a JSON object")
        return cls.from_dict(data)


def _layer(data: Mapping[str, Any]) -> LayerQuantisation:
    current = data["input_current"]
    return _record(
        LayerQuantisation,
        {
            **data,
            "weights": [_record(WeightQuantisation, w) for w in data["weights"]],
            "input_current": None if current is None else _record(InputCurrent, current),
        },
    )


def _record(cls: type, data: Mapping[str, Any]) -> Any:
    """`cls(**data)` with unknown or missing keys as a one-line error."""
    try:
        return cls(**data)
    except TypeError as exc:
        raise QuantisationReportError(f"invalid quantisation report: {exc}") from None


def _raise_if(where: str, problems: list[str]) -> None:
    if problems:
        raise QuantisationReportError(
            f"invalid quantisation report: {where}: {'; '.join(problems)}"
        )


def _integer(name: str, value: Any) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, int):
        return [f"{name} must be an integer, got {value!r}"]
    return []


def _count(name: str, value: Any, least: int = 0) -> list[str]:
    if _integer(name, value) or value < least:
        return [f"{name} must be an integer of at least {least}, got {value!r}"]
    return []


def _share(name: str, value: Any) -> list[str]:
    """A finite number of at least 0 (a share may exceed 1: a current beyond the range)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return [f"{name} must be a finite number, got {value!r}"]
    return [f"{name} must not be negative, got {value!r}"] if value < 0 else []


def _positive(name: str, value: Any) -> list[str]:
    return _share(name, value) or ([f"{name} must be positive, got {value!r}"] if not value else [])
