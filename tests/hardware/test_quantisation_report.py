"""hardware/quantisation_report.py: the fixed_pt report as a record (no Lava needed): its
lines, adding the reports of two chunks of one run, JSON, one-line errors."""

from __future__ import annotations

import dataclasses

import pytest
from lava_helpers import quantisation_report

from hardware.quantisation_report import (
    CurrentOverflow,
    InputCurrent,
    InputQuantisation,
    QuantisationReport,
    QuantisationReportError,
    WeightQuantisation,
)

# The lines of `quantisation_report()`, worked out by hand from its figures (2**17 = 131072 is
# the 24-bit current's range in units of synaptic input: 94208 / 131072 = 71.875%).
PARAMETER_LINES = [
    "quantise: calibrated on 102 samples",
    "quantise: input x4.33976 -> 8-bit integers, max error 0.39% of max |input|",
    "quantise: node '1' (LIF) <- input: weight_exp +0 (mixed), max weight error 0.46% of max |w|",
    "quantise: node '1' (LIF): vth 8192, dv 410 (dt/tau 0.1 -> 0.100098), du 4095 (1 -> 1), "
    "max bias error 4.6e-07 thresholds",
    "quantise: node '1': threshold lowered by 2**1 so that the largest input current of these "
    "inputs (11.5 thresholds) fits Loihi's 24-bit current",
    "quantise: node '1': largest input current 94208 = 71.9% of Loihi's 24-bit range",
    "quantise: node '3' (LIF) <- 1: weight_exp -3 (excitatory), max weight error 0.63% of max |w|",
    "quantise: node '3' (LIF): vth 8192, dv 410 (dt/tau 0.1 -> 0.100098), du 4095 (1 -> 1), "
    "max bias error 0 thresholds",
]


def test_lines_word_every_parameter_then_every_layers_overflow():
    report = quantisation_report({"1": (0.71875, 0, 96), "3": (1.5, 3, 48)})
    assert report.parameter_lines() == PARAMETER_LINES
    assert report.overflow_lines() == [
        "quantise: node '1': no current overflow in this run (peak 71.9% of Loihi's 24-bit range)",
        "quantise: warning: node '3': 3 of 48 neuron-steps exceeded the 24-bit current and "
        "wrapped (peak 150.0% of Loihi's 24-bit range)",
    ]
    assert report.text() == "\n".join(report.parameter_lines() + report.overflow_lines())


def test_own_inputs_and_binary_spikes_are_worded_as_before():
    report = dataclasses.replace(quantisation_report(), calibration_samples=None)
    assert report.parameter_lines()[0].startswith("quantise: input x4.33976")
    spikes = InputQuantisation(scale=1.0, binary=True, bits=8)
    assert spikes.line() == "quantise: input x1 -> binary spikes (exact)"


def test_adding_two_chunks_sums_the_counts_and_keeps_the_larger_peak():
    first = quantisation_report({"1": (0.25, 0, 96), "3": (1.5, 3, 48)})
    second = quantisation_report({"1": (0.5, 0, 32), "3": (1.25, 2, 16)})
    total = first + second
    assert total.overflow == {
        "1": CurrentOverflow(peak_share=0.5, wrapped=0, neuron_steps=128),
        "3": CurrentOverflow(peak_share=1.5, wrapped=5, neuron_steps=64),
    }
    assert total.parameter_lines() == PARAMETER_LINES  # one calibration: the same integers
    assert total.overflow_lines()[1].startswith("quantise: warning: node '3': 5 of 64 ")


def test_chunks_on_different_integers_or_layers_cannot_be_added():
    report = quantisation_report({"1": (0.25, 0, 96), "3": (1.5, 3, 48)})
    other = dataclasses.replace(report, calibration_samples=51)  # calibrated on other inputs
    with pytest.raises(QuantisationReportError, match="on different integers"):
        report + other
    with pytest.raises(QuantisationReportError, match="cannot add the overflow of layers"):
        report + report.with_overflow({"1": CurrentOverflow(0.25, 0, 96)})


def test_overflow_is_renamed_in_the_callers_order_and_the_parameters_keep_their_nodes():
    report = quantisation_report({"1": (0.25, 0, 96), "3": (1.5, 3, 48)})
    renamed = report.renamed_overflow({"3": "lif2", "1": "lif1"})
    assert list(renamed.overflow) == ["lif2", "lif1"]
    assert renamed.overflow["lif2"] == report.overflow["3"]
    assert renamed.parameter_lines() == PARAMETER_LINES
    with pytest.raises(QuantisationReportError, match="cannot rename the overflow"):
        report.renamed_overflow({"1": "lif1"})


def test_json_round_trip():
    report = quantisation_report({"1": (0.71875, 0, 96), "3": (1.5, 3, 48)})
    back = QuantisationReport.from_json(report.to_json())
    assert back == report and back.text() == report.text()
    assert back.to_dict() == report.to_dict()
    assert report.to_dict()["overflow"]["3"] == {
        "peak_share": 1.5,
        "wrapped": 3,
        "neuron_steps": 48,
    }
    assert report.to_dict()["layers"][0]["weights"] == [
        {"source": "input", "weight_exp": 0, "sign_mode": "mixed", "max_error_share": 0.0046}
    ]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: CurrentOverflow(0.5, 5, 4), "current overflow: wrapped 5 exceeds neuron_steps 4"),
        (lambda: CurrentOverflow(-0.1, 0, 4), "peak_share must not be negative"),
        (lambda: WeightQuantisation("input", 1.5, "mixed", 0.0), "weight_exp must be an integer"),
        (lambda: WeightQuantisation("input", 0, "positive", 0.0), "sign_mode must be one of"),
        (lambda: InputQuantisation(2.0, True, 8, 0.01), "binary spikes are exact"),
        (lambda: InputCurrent(10.0, 0.1, threshold_shift=2), "a lowered threshold"),
        (
            lambda: dataclasses.replace(quantisation_report().layers[0], vth=0),
            "node '1': vth must be an integer of at least 1, got 0",
        ),
        (
            lambda: dataclasses.replace(
                quantisation_report(), layers=quantisation_report().layers[:1] * 2
            ),
            "layers must be named once each",
        ),
        (lambda: QuantisationReport.from_json("quantise: vth 16384"), "not JSON"),
        (lambda: QuantisationReport.from_json('{"layers": []}'), "missing or malformed"),
    ],
)
def test_an_invalid_field_is_a_one_line_error(make, message):
    with pytest.raises(QuantisationReportError, match="invalid quantisation report: ") as info:
        make()
    assert message in str(info.value) and "\n" not in str(info.value)
