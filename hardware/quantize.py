"""Floating-point plan -> Loihi integers for Lava's bit-accurate (fixed_pt) models.

The whole quantisation step is `quantize_for_loihi`; `LOIHI` holds the limits it obeys, read
from lava-nc 0.10's bit-accurate models (`lava.proc.lif.models.AbstractPyLifModelFixed`,
`lava.proc.dense.models.AbstractPyDenseModelBitAcc`, `lava.utils.weightutils`):

- weights: 8-bit mantissa per synapse (mixed-sign matrices lose the least significant bit:
  even values in [-256, 254]), times 2**weight_exp shared by a connection;
- u and v: 24-bit; each step's synaptic input is shifted left by 6 before it joins u, the
  threshold is shifted left by 6 before the comparison, the bias is added to v unshifted;
- du, dv: 12-bit decays, u *= (4096 - du - 1) / 4096 and v *= (4096 - dv) / 4096, rounding
  toward zero (one per neuron where the decays differ, see lava_network.py); vth: 17-bit
  unsigned; bias: 13-bit signed mantissa << 3-bit exponent;
- the rest potential each sample starts from (`v_rest`) is a 24-bit v, in the bias's units.

In floating_pt units every population has threshold 1 (see mapping.py). Here a population's
threshold becomes the integer 2**14 (exact), leaving 8x headroom below the 2**17 input range
of the 24-bit state; each connection then gets the weight exponent that lets its largest
weight use the full mantissa. Graded input (currents) becomes 8-bit signed integers per step.
A readout's voltage (LI, CubaLI, I: never compared with the threshold) is in the same units:
v = v_int / (vth << 6) in NIR's units.

`NETX` is the profile of the integers lava-dl's netx format can hold (every weight at exponent
0 and every bias at exponent 6), which `--quantise-as netx` and export/to_netx.py use, so that
a harness run and a netx run of the same graph are the same integers.

The 24-bit current `u` WRAPS on overflow in Lava's bit-accurate LIF (2**23 + k becomes k: a
large excitatory input turns inhibitory), so overflow is checked on the actual data, never on
a worst-case bound (which for dense layers is far above what inputs reach): a layer fed by
the graph input gets the largest threshold whose current holds every step of the inputs it
will stream (`quantize_for_loihi`); layers fed by spikes are checked after the run against
the spikes they actually received (`current_overflow`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from lava.utils.weightutils import SignMode, clip_weights, determine_sign_mode, truncate_weights
from scipy import sparse

from hardware.plan import (
    CONSTANT,
    QUANTISE_PROFILES,
    HarnessError,
    LavaPlan,
    NeuronLayer,
    matrix_values,
)
from hardware.quantisation_report import (
    CurrentOverflow,
    InputCurrent,
    InputQuantisation,
    LayerQuantisation,
    QuantisationReport,
    WeightQuantisation,
)


@dataclass(frozen=True)
class LoihiLimits:
    weight_bits: int = 8
    # Lava's Dense/Sparse models do not bound weight_exp; Loihi's synapse format holds a 4-bit
    # signed exponent, so stay within it.
    weight_exp_range: tuple[int, int] = (-8, 7)
    decay_unity: int = 4096
    state_bits: int = 24
    activation_shift: int = 6
    bias_mant_max: int = 2**12 - 1
    bias_exp_max: int = 7
    # None: the smallest bias exponent per neuron that fits its mantissa; an integer: every
    # bias at that exponent (lava-dl netx's format fixes it at 6, see `NETX`)
    bias_exp_fixed: int | None = None
    threshold_exp: int = 14
    input_bits: int = 8

    @property
    def weight_max(self) -> int:
        """Largest weight mantissa of every sign mode (mixed sign keeps even values only)."""
        return 2**self.weight_bits - 2

    @property
    def activation_max(self) -> int:
        """Largest |u| or |v| in units of synaptic input (24-bit state >> 6)."""
        return 2 ** (self.state_bits - 1 - self.activation_shift)


LOIHI = LoihiLimits()
# The integers lava-dl's netx format can hold (export/to_netx.py, hardware/netx.py): netx
# re-derives each layer's weight exponent from the stored 8-bit weights as if they carried
# exponent 0 (`netx.utils.optimize_weight_bits`) and reads `bias` as a mantissa at exponent 6
# (`netx.hdf5.Network.get_neuron_params`), so every weight here is at exponent 0 (the
# threshold is lowered until the largest weight fits 8 bits) and every bias at exponent 6.
NETX = LoihiLimits(weight_exp_range=(0, 0), bias_exp_fixed=6)
PROFILES = dict(zip(QUANTISE_PROFILES, (LOIHI, NETX)))


def quantize_for_loihi(
    plan: LavaPlan, inputs: np.ndarray, limits: LoihiLimits = LOIHI
) -> tuple[LavaPlan, QuantisationReport]:
    """`plan` in Loihi's integers, calibrated on `inputs`, and the report of its rounding.

    `inputs` are the calibration data: the inputs the run will stream, or a larger set they
    are part of, so that every part of a data set runs on the same integers. Binary inputs
    stay 0/1; graded inputs are scaled so that max |input| becomes the largest
    `limits.input_bits`-bit signed integer (streamed inputs beyond it saturate). Raises
    HarnessError naming the node when a parameter has no representation.
    """
    peak = float(np.max(np.abs(inputs))) if inputs.size else 0.0
    binary = bool(np.all((inputs == 0) | (inputs == 1)))
    input_scale = 1.0 if binary or peak == 0 else (2 ** (limits.input_bits - 1) - 1) / peak
    encoded = np.rint(inputs * input_scale)
    input_error = 0.0 if binary else _share(np.max(np.abs(encoded / input_scale - inputs)), peak)
    input_record = InputQuantisation(input_scale, binary, limits.input_bits, input_error)
    scales = {plan.input_name: input_scale}
    flat = {plan.input_name: encoded.reshape(-1, plan.input_size)}
    layers, records = [], []
    for layer in plan.layers:
        quantized, record = _quantize_layer(layer, scales, limits, limits.threshold_exp)
        if any(c.source == plan.input_name for c in layer.inputs):
            # The inputs are known: lower the threshold (and with it every weight) until the
            # largest current they drive fits the 24-bit state, instead of letting it wrap.
            peak = _peak(_synaptic_input(quantized, flat))
            shift, unshifted = 0, None
            if peak > limits.activation_max:
                shift = math.ceil(math.log2(peak / limits.activation_max))
                unshifted = peak / 2**limits.threshold_exp
                quantized, record = _quantize_layer(
                    layer, scales, limits, limits.threshold_exp - shift
                )
                peak = _peak(_synaptic_input(quantized, flat))
            current = InputCurrent(peak, peak / limits.activation_max, shift, unshifted)
            record = dataclasses.replace(record, input_current=current)
        layers.append(quantized)
        records.append(record)
    limit = None if binary else float(2 ** (limits.input_bits - 1) - 1)
    fixed = plan.replace(
        layers=tuple(layers), mode="fixed_pt", input_scale=input_scale, input_limit=limit
    )
    return fixed, QuantisationReport(input_record, tuple(records))


def current_overflow(
    plan: LavaPlan, inputs: np.ndarray, spikes: dict[str, np.ndarray], limits: LoihiLimits = LOIHI
) -> dict[str, CurrentOverflow]:
    """Per layer of a fixed_pt run, the largest current `u` its actual inputs drove (the
    graph's integer input stream and the recorded spikes of its sources, from rest every
    sample) as a share of the 24-bit range, and how many of its neuron-steps wrapped
    (`QuantisationReport.with_overflow` files them, its `overflow_lines` word them).

    `u` follows u_t = u_{t-1} * (1 - (du + 1) / 4096) + input_t, Lava's LIF current without
    its rounding toward zero (a CubaLIF's one-step input lag does not change the peak).
    """
    samples, steps = inputs.shape[:2]
    stream = plan.encode_input(inputs.reshape(samples, steps, plan.input_size))
    events = {name: s.reshape(samples * steps, -1) for name, s in spikes.items()}
    events[plan.input_name] = stream.reshape(samples * steps, -1)
    events[CONSTANT] = np.ones((samples * steps, 1))
    stats = {}
    for layer in plan.layers:
        drive = _synaptic_input(layer, events).reshape(samples, steps, layer.size)
        keep = 1.0 - (layer.du + 1) / limits.decay_unity
        current = np.zeros((samples, layer.size))
        peak, wrapped = 0.0, 0
        for t in range(steps):
            current = current * keep + drive[:, t]
            over = np.abs(current) > limits.activation_max
            peak = max(peak, float(np.max(np.abs(current), initial=0.0)))
            wrapped += int(over.sum())
        stats[layer.name] = CurrentOverflow(
            peak / limits.activation_max, wrapped, samples * steps * layer.size
        )
    return stats


def _synaptic_input(layer: NeuronLayer, events: dict[str, np.ndarray]) -> np.ndarray:
    """`(rows, layer.size)`: what one step of `events` (`{source: (rows, source size)}`)
    delivers through `layer`'s integer weights; sources missing from `events` add nothing."""
    total = np.zeros((len(next(iter(events.values()))), layer.size))
    for conn in layer.inputs:
        if conn.source in events:
            pre = events[conn.source].astype(np.float64)
            total += np.asarray((conn.weight @ pre.T).T) * 2.0**conn.weight_exp
    return total


def _quantize_layer(
    layer: NeuronLayer,
    scales: dict[str, float],
    limits: LoihiLimits,
    threshold_exp: int,
) -> tuple[NeuronLayer, LayerQuantisation]:
    """`scales`: the integer scale of each graded source; spikes are 1."""
    where = f"node '{layer.name}' ({layer.kind})"
    lo_exp, hi_exp = limits.weight_exp_range
    # Threshold 2**p; lower p only when a weight would need an exponent above the range.
    scale_of = {c.source: scales.get(c.source, 1.0) for c in layer.inputs}
    needed = max(
        (
            _exponent(_peak(c.weight) / scale_of[c.source] * 2**threshold_exp, limits)
            for c in layer.inputs
        ),
        default=lo_exp,
    )
    p = threshold_exp - max(0, needed - hi_exp)
    bias_peak = float(np.max(np.abs(layer.bias_mant), initial=0.0))
    if limits.bias_exp_fixed is not None and bias_peak > 0:
        # one bias exponent: lower the threshold until the largest bias fits the mantissa
        room = limits.bias_mant_max * 2.0 ** (limits.bias_exp_fixed - limits.activation_shift)
        p = min(p, math.floor(math.log2(room / bias_peak)))
    if p < 0:
        raise HarnessError(f"{where}: a single input exceeds 2**{hi_exp + 8} thresholds")
    vth = 2**p
    connections, weights = [], []
    for conn in layer.inputs:
        target = conn.weight * (vth / scale_of[conn.source])
        exp = min(max(_exponent(_peak(target), limits), lo_exp), hi_exp)
        weight, mode = _on_grid(target, exp, limits.weight_bits)
        if _peak(target) > 0 and _peak(weight) == 0:
            raise HarnessError(
                f"{where}: weights from {conn.source} are below Loihi's 8-bit resolution "
                f"even at weight_exp {lo_exp}"
            )
        error = _share(_peak(weight * 2.0**exp - target), _peak(target))
        weights.append(WeightQuantisation(conn.source, exp, mode.name.lower(), error))
        connections.append(dataclasses.replace(conn, weight=weight, weight_exp=exp))

    dv_float, du_float = _per_neuron(layer.dv, layer.size), _per_neuron(layer.du, layer.size)
    dv = np.minimum(np.rint(dv_float * limits.decay_unity), limits.decay_unity - 1).astype(int)
    if np.any((dv_float > 0) & (dv == 0)):
        raise HarnessError(
            f"{where}: decay dt/tau = {np.min(dv_float[dv_float > 0]):.3g} is below Loihi's "
            "12-bit resolution 1/4096"
        )
    # Lava adds ds_offset = 1 to du, so du = 4095 is a full decay (u holds one step's input).
    du = np.rint(du_float * limits.decay_unity).astype(int) - 1
    if np.any((du < 0) | (du >= limits.decay_unity)):
        raise HarnessError(
            f"{where}: current decay dt/tau_syn = {np.min(du_float):.3g} is below Loihi's 12-bit "
            "resolution 1/4096"
        )
    bias_total = layer.bias_mant * vth * 2**limits.activation_shift
    bias_exp = np.zeros(layer.size, dtype=np.int64)
    if limits.bias_exp_fixed is None:
        big = np.abs(bias_total) > limits.bias_mant_max
        bias_exp[big] = np.ceil(np.log2(np.abs(bias_total[big]) / limits.bias_mant_max))
    else:
        bias_exp[:] = limits.bias_exp_fixed
    too_large = np.abs(bias_total) / 2.0**bias_exp > limits.bias_mant_max + 0.5
    if np.any(bias_exp > limits.bias_exp_max) or np.any(too_large):
        raise HarnessError(f"{where}: bias {np.max(np.abs(layer.bias_mant)):.3g} is too large")
    bias_mant = np.rint(bias_total / 2.0**bias_exp).astype(np.int64)
    bias_mant = np.clip(bias_mant, -limits.bias_mant_max - 1, limits.bias_mant_max)
    bias_error = np.max(np.abs(bias_mant * 2.0**bias_exp - bias_total), initial=0.0)
    # v is in the same units as the bias: thresholds of vth << activation_shift.
    rest = np.broadcast_to(layer.v_rest, (layer.size,)) * vth * 2**limits.activation_shift
    if np.any(np.abs(rest) >= 2 ** (limits.state_bits - 1)):
        raise HarnessError(
            f"{where}: rest potential (v_leak - v_reset) = "
            f"{np.max(np.abs(layer.v_rest)):.3g} x (v_threshold - v_reset) does not fit "
            "Loihi's 24-bit voltage"
        )
    # the report names the neuron whose decays rounded worst (relative error)
    dv_loihi, du_loihi = dv / limits.decay_unity, (du + 1) / limits.decay_unity
    worst = int(
        np.argmax(
            np.maximum(
                _relative(dv_loihi, dv_float),
                _relative(du_loihi, du_float),
            )
        )
    )
    record = LayerQuantisation(
        node=layer.name,
        kind=layer.kind,
        weights=tuple(weights),
        vth=vth,
        dv=int(dv[worst]),
        dv_float=float(dv_float[worst]),
        dv_loihi=float(dv_loihi[worst]),
        du=int(du[worst]),
        du_float=float(du_float[worst]),
        du_loihi=float(du_loihi[worst]),
        max_bias_error=float(bias_error / (vth * 2**limits.activation_shift)),
        decays=len(set(zip(du.tolist(), dv.tolist()))),
    )
    quantized = dataclasses.replace(
        layer,
        du=du,
        dv=dv,
        vth=vth,
        bias_mant=bias_mant,
        bias_exp=bias_exp,
        inputs=tuple(connections),
        v_rest=np.rint(rest).astype(np.int64),
    )
    return quantized, record


def _per_neuron(value, size: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, dtype=np.float64).reshape(-1), (size,)).copy()


def _relative(rounded: np.ndarray, exact: np.ndarray) -> np.ndarray:
    return np.abs(rounded - exact) / np.where(exact > 0, exact, 1.0)


def _on_grid(target, exp: int, bits: int):
    """Weights `target / 2**exp` rounded to integers Lava's Dense keeps as they are."""
    mode = determine_sign_mode(matrix_values(target))
    scaled = target * 2.0**-exp
    if mode == SignMode.MIXED:  # the sign takes a bit: Lava truncates to even values
        weight = _map(scaled, lambda v: 2 * np.rint(v / 2))
    else:
        weight = _map(scaled, np.rint)
    # Lava's own clip and truncation are a no-op on these values; applying them here keeps
    # the reported error honest should the two ever disagree.
    weight = clip_weights(weight, mode, num_bits=bits)
    weight = truncate_weights(weight, mode, num_weight_bits=bits)
    return weight, mode


def _exponent(peak: float, limits: LoihiLimits) -> int:
    """Smallest weight exponent that fits `peak` into the weight mantissa."""
    return math.ceil(math.log2(peak / limits.weight_max)) if peak > 0 else 0


def _peak(matrix) -> float:
    values = matrix_values(matrix)
    return float(np.max(np.abs(values))) if values.size else 0.0


def _map(matrix, fn):
    if sparse.issparse(matrix):
        matrix = matrix.copy()
        matrix.data = fn(matrix.data)
        return matrix
    return fn(matrix)


def _share(error: float, scale: float) -> float:
    """`error` as a share of `scale` (0 when there is nothing to scale)."""
    return float(error / scale) if scale > 0 else 0.0
