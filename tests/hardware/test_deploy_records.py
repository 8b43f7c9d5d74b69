"""ash_neuro/deploy/records.py and report.py on a record made by hand (no Lava, no model):
derived figures worked out by hand, report.json's keys, the JSON written, one-line errors."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from lava_helpers import quantisation_report

from ash_neuro.deploy import DeployError
from ash_neuro.deploy.records import (
    DeploymentRecord,
    EnergyRecord,
    LavaModeRecord,
    NorseRecord,
    SimulatorTiming,
    SpikeAgreement,
)
from ash_neuro.deploy.report import FILES, markdown, write_report
from ash_neuro.energy import ChipFit, ChipMapping, HostWork, LayerEnergy, load_profile

LAYERS = {"lif1": 4, "lif2": 2}
MODES = ("floating_pt", "fixed_pt")


def energy(**changes) -> EnergyRecord:
    """Two layers with round figures: SNN 1 + 1 uJ, ANN 2 + 1 uJ (INT8 0.1 + 0.05), SNN ops
    at 45 nm 0.1 uJ (INT8 0.01); the host's first Affine 100,000 MACs; 17 copies side by side,
    3 steps per image of 2 us, 2 of pipeline."""
    lif1 = LayerEnergy(
        "lif1", 24, 24, 20, 6, 500_000, 250_000, 250_000, 100_000, 10_000, 24, 2_000_000, 100_000
    )
    lif2 = LayerEnergy("lif2", 8, 12, 3, 2, 0, 1_000_000, 0, 0, 0, 8, 1_000_000, 50_000)
    fit = ChipFit(neurons=102, synapses=340, neurons_per_chip=1e6, synapses_per_chip=1.2e8)
    mapping = ChipMapping(17, 102, 340, 1, 1, 0.0, 113.0)
    chip, ann, int8 = (
        load_profile("loihi2"),
        load_profile("ann_45nm"),
        load_profile("ann_45nm_int8"),
    )
    record = EnergyRecord(
        chip, ann, int8, (lif1, lif2), HostWork(macs=100_000), "token_parallel", mapping, fit,
        steps_per_image=3, pipeline_fill_steps=2, step_time_ns=2000.0, dt=1e-3,
    )  # fmt: skip
    return dataclasses.replace(record, **changes)


def lava_mode(quantised: bool = False) -> LavaModeRecord:
    return LavaModeRecord(
        metrics={"r_mean": 50.0, "t2i_r1": 25.0},
        agreement=SpikeAgreement({"lif1": 1.0, "lif2": 0.75}, 0.875),
        firing_rates={"lif1": 0.25, "lif2": 0.125},
        pipeline_latency_steps={"lif1": 1, "lif2": 2},
        simulator=SimulatorTiming.of_run(1.0, 2.0, 6.0, 400, 3, 51),
        quantisation=(
            quantisation_report({"1": (0.5, 0, 96), "3": (1.5, 3, 48)}).renamed_overflow(
                {"1": "lif1", "3": "lif2"}
            )
            if quantised
            else None
        ),
        energy=energy(),
        neuron_shares={"lif1": (0.25, 0.0), "lif2": (0.5, 0.5)},
    )


def deployment(**changes) -> DeploymentRecord:
    record = DeploymentRecord(
        checkpoint="runs/demo/ckpt.pt",
        graph="runs/demo/encoder.nir",
        task="retrieval",
        split="test",
        main_metric="r_mean",
        n_images=3,
        n_examples=15,
        rows_per_image=17,
        time_steps=3,
        dt=1e-3,
        layer_sizes=LAYERS,
        norse=NorseRecord(
            {"r_mean": 50.0, "t2i_r1": 25.0},
            {"lif1": 0.25, "lif2": 0.25},
            0.01,
            {"lif1": (0.25, 0.0), "lif2": (0.0, 0.5)},
        ),
        modes={"floating_pt": lava_mode(), "fixed_pt": lava_mode(quantised=True)},
    )
    return dataclasses.replace(record, **changes)


def test_derived_figures_worked_by_hand():
    timing = SimulatorTiming.of_run(
        build_s=1.0, run_s=2.0, wall_s=6.0, steps=400, images=3, steps_per_image=51
    )
    assert timing.ms_per_step == 5.0  # 2 s / 400 steps
    assert timing.seconds_per_image == 2.0  # 6 s / 3 images
    assert timing.images_per_s == 0.5
    assert timing.step_floor_seconds_per_image == pytest.approx(0.255)  # 5 ms x 51 steps
    e = energy()
    # the chip's 2 uJ and the host's 100,000 INT8 MACs of 0.23 pJ
    assert e.host_uj_per_image == pytest.approx(0.023)
    assert e.snn_uj_per_image == pytest.approx(2.023)
    assert e.ann_uj_per_image == pytest.approx(3.0)
    assert e.ann_int8_uj_per_image == pytest.approx(0.15)
    # 45 nm: the chip's ops plus the host's MACs at 4.6 pJ (FP32) and 0.23 pJ (INT8)
    assert e.snn_ops_on_ann_profile_uj_per_image == pytest.approx(0.1 + 0.46)
    assert e.snn_ops_on_int8_uj_per_image == pytest.approx(0.01 + 0.023)
    assert e.step_time_us == pytest.approx(2.0)
    assert e.latency_steps_per_image == 5  # 3 steps + 2 of pipeline
    assert e.chip_latency_ms_per_image == pytest.approx(0.010)  # 5 steps x 2 us
    assert e.chip_images_per_s == pytest.approx(1e9 / 6000)  # one image every 3 steps
    assert e.biological_time_ms_per_image == pytest.approx(3.0)  # 3 steps x 1 ms
    assert ChipFit(6, 20, 1e6, 1.2e8).neuron_share == 6e-6
    assert lava_mode().latency_handling.endswith(
        "removed {'lif1': 1, 'lif2': 2} steps per layer, so spikes are compared step for step"
    )


def test_report_json_keeps_its_keys():
    """A machine reader of report.json sees the keys it has always seen."""
    data = deployment().to_dict()
    assert list(data) == [
        "checkpoint", "nir", "task", "split", "main_metric", "n_images", "n_examples",
        "rows_per_image", "time_steps", "dt", "layer_sizes", "norse", "modes",
    ]  # fmt: skip
    assert list(data["norse"]) == ["metrics", "firing_rates", "seconds_per_image", "neuron_shares"]
    assert data["norse"]["neuron_shares"]["lif2"] == {"silent": 0.0, "saturated": 0.5}
    mode = data["modes"]["fixed_pt"]
    assert list(mode) == [
        "metrics", "agreement", "firing_rates", "pipeline_latency_steps", "latency_handling",
        "simulator", "quantisation", "energy", "neuron_shares",
    ]  # fmt: skip
    assert mode["agreement"] == {"lif1": 1.0, "lif2": 0.75, "all": 0.875}
    assert list(mode["simulator"]) == [
        "build_s", "run_s", "wall_s", "steps", "label", "ms_per_step", "seconds_per_image",
        "step_floor_seconds_per_image", "images_per_s",
    ]  # fmt: skip
    assert list(mode["energy"]) == [
        "estimate", "chip", "per_operation_basis", "chip_fit", "profiles", "layers",
        "snn_uj_per_image", "snn_ops_on_ann_profile_uj_per_image", "ann_uj_per_image",
        "steps_per_image", "pipeline_fill_steps", "step_time_us", "chip_latency_ms_per_image",
        "biological_time_ms_per_image", "layout", "mapping", "host",
        "snn_ops_on_int8_uj_per_image", "ann_int8_uj_per_image", "latency_steps_per_image",
        "chip_images_per_s",
    ]  # fmt: skip
    assert list(mode["energy"]["profiles"]) == ["loihi2", "ann_45nm", "ann_45nm_int8"]
    assert mode["energy"]["layers"][0]["snn_uj"] == pytest.approx(1.0)
    assert mode["energy"]["chip_fit"]["fits_one_chip"] is True
    # the quantisation report travels as its lines, as it always has
    assert mode["quantisation"].splitlines()[-1] == (
        "quantise: warning: node 'lif2': 3 of 48 neuron-steps exceeded the 24-bit current and "
        "wrapped (peak 150.0% of Loihi's 24-bit range)"
    )
    assert data["modes"]["floating_pt"]["quantisation"] is None


def test_the_json_written_is_the_record(tmp_path):
    record = deployment()
    spikes = (np.random.default_rng(0).uniform(size=(3, 17, 4)) < 0.3).astype(np.float32)
    rasters = {side: {"lif1": spikes, "lif2": spikes[..., :2]} for side in ("norse", *MODES)}
    written = write_report(record, rasters, tmp_path)
    assert [p.name for p in written] == list(FILES)
    assert json.loads((tmp_path / "report.json").read_text()) == record.to_dict()
    text = (tmp_path / "report.md").read_text()
    assert text == markdown(record)
    assert "| **r_mean** | 50.00 | 50.00 | 50.00 |" in text
    assert "| lif2 | 0.2500 | 75.000% | 0.1250 | 2 steps | 75.000% | 0.1250 | 2 steps |" in text
    assert (
        "| Lava fixed_pt (simulator wall time, not chip time) | 2.000 | 0.5 | 0.255 | 5.00 |"
        in text
    )
    assert "| lif1 | 24 | 24 (20) | 6 | 1.000 | 0.100 | 0.010 | 24 | 2.000 | 0.100 |" in text
    assert "| host: first Affine (1e+05 MACs, 0 adds) | | | | 0.023 | 0.460 | 0.023 | | | |" in text
    assert "| total | | | | 2.023 | 0.560 | 0.033 | | 3.000 | 0.150 |" in text
    assert "Latency (token-parallel: the image's 17 token rows at once" in text
    assert "Capacity (17 copies of the encoder): 102 neurons" in text
    assert "| layer | Norse silent | Norse saturated | floating_pt silent |" in text
    assert "| lif2 | 0.0% | 50.0% | 50.0% | 50.0% | 50.0% | 50.0% |" in text
    assert "## Quantisation (fixed_pt)" in text and "## Quantisation (floating_pt)" not in text
    assert "quantise: calibrated on 102 samples" in text


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SpikeAgreement({"lif1": 1.5}, 1.0), "agreement lif1 must be in [0, 1], got 1.5"),
        (
            lambda: NorseRecord({"r_mean": "high"}, {"lif1": 0.1}, 0.01),
            "metric r_mean must be a number, got 'high'",
        ),
        (
            lambda: SimulatorTiming(1.0, 2.0, 6.0, 0, 2.0, 0.1),
            "steps must be a positive integer, got 0",
        ),
        (
            lambda: energy(ann=load_profile("loihi")),
            "energy needs a neuromorphic and two ANN profiles",
        ),
        (lambda: energy(layout="diagonal"), "layout must be one of token_parallel, streaming"),
        (
            lambda: energy(host=HostWork(macs=-1.0)),
            "host macs must be a finite number >= 0, got -1.0",
        ),
        (
            lambda: dataclasses.replace(lava_mode(), pipeline_latency_steps={"lif2": 2}),
            "pipeline latency is of layers ['lif2'], the firing rates of ['lif1', 'lif2']",
        ),
        (lambda: deployment(n_images=0), "n_images must be a positive integer, got 0"),
        (
            lambda: NorseRecord({"r": 1.0}, {"lif1": 0.1}, 0.01, {"lif1": (1.5, 0.0)}),
            "silent share of lif1 must be in [0, 1], got 1.5",
        ),
        (lambda: deployment(main_metric="acc"), "main_metric 'acc' is not among"),
        (lambda: deployment(layer_sizes={"lif1": 4}), "Norse's layers ['lif1', 'lif2'] are not"),
    ],
)
def test_an_invalid_field_is_a_one_line_error(make, message):
    with pytest.raises(DeployError, match="^invalid deployment record: ") as info:
        make()
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_report_places_the_deployment_on_a_frontier(tmp_path):
    def row(point, r_mean, chip, host):
        return {"point": point, "r_mean_norse": r_mean, "chip": {"fp32_uj": chip},
                "host": {"fp32_uj": host}}  # fmt: skip

    rows = [
        row("default (not fine-tuned)", 50.0, 1.0, 0.6),
        row("1:0.1:poisson", 49.0, 0.2, 0.3),
        row("4:0.02:current", 40.0, 0.1, 0.1),  # cheaper, but 10 points below the default
    ]
    path = tmp_path / "frontier.json"
    path.write_text(json.dumps(rows))
    text = markdown(deployment(), path)
    # the record: first layer on the host (its MACs), 0.56 uJ on the 45 nm FP32 convention
    assert "first layer on the host, 0.56 uJ per image on the 45 nm FP32 convention" in text
    assert "The frontier's default checkpoint reaches r_mean 50.00 there at 0.60 uJ." in text
    assert (
        "2 frontier point(s) cost less at an r_mean within 2 points of the default's; the "
        "cheapest: 1:0.1:poisson, first layer on the chip, r_mean 49.00 at 0.20 uJ (36% of "
        "this deployment's)." in text
    )
    path.write_text("[]")
    with pytest.raises(DeployError, match="is not a frontier.json"):
        markdown(deployment(), path)
