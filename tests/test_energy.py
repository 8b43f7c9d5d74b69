"""ash_neuro.energy: operation counts times per-operation figures, on hand-made counts."""

from __future__ import annotations

import json

import pytest

from ash_neuro.energy import (
    PROFILES,
    HardwareProfile,
    ProfileError,
    chip_fit,
    energy_per_image,
    layer_counts,
    load_profile,
    step_time_ns,
)

CHIP = HardwareProfile(
    "chip",
    "neuromorphic",
    "round numbers",
    {
        "synaptic_op_pj": 1.0,
        "neuron_update_pj": 10.0,
        "spike_message_pj": 0.5,
        "tile_hop_pj": 0.5,
        "synaptic_op_ns": 2.0,
        "neuron_update_ns": 1.0,
        "barrier_sync_ns": 10.0,
    },
    {},
)
ANN = HardwareProfile("ann", "ann", "round numbers", {"mac_pj": 4.0, "accumulate_pj": 1.0}, {})


def counts():
    # 4 inputs -> 3 -> 2 neurons; per image 2 token rows of T = 2 steps (4 steps), 8 non-zero
    # graded inputs, 5 spikes in the first layer and 1 in the second
    return layer_counts(["lif1", "lif2"], [3, 2], 4, 8.0, [5.0, 1.0], steps=4)


def test_energy_of_hand_made_counts():
    first, second = energy_per_image(counts(), rows_per_image=2, chip=CHIP, ann=ANN)
    # lif1: 8 inputs x 3 targets = 24 synaptic ops; 3 neurons x 4 steps = 12 updates; 8 messages
    assert (first.synaptic_ops, first.neuron_updates, first.messages) == (24, 12, 8)
    assert (first.synaptic_pj, first.neuron_pj, first.message_pj) == (24, 120, 8)
    assert first.snn_pj == 152
    assert first.snn_on_ann_pj == 24 * 4.0  # graded inputs: a MAC each
    assert (first.ann_macs, first.ann_pj) == (4 * 3 * 2, 96)  # once per token row
    # lif2: 5 spikes x 2 targets = 10 ops; 2 neurons x 4 steps = 8 updates; 5 messages
    assert (second.synaptic_pj, second.neuron_pj, second.message_pj) == (10, 80, 5)
    assert second.snn_on_ann_pj == 10 * 1.0  # binary spikes: an accumulate each
    assert (second.ann_macs, second.ann_pj) == (3 * 2 * 2, 48)


def test_step_time_is_serial_ops_plus_barrier():
    # per step: 34 / 4 synaptic ops x 2 ns + 20 / 4 updates x 1 ns + 10 ns barrier
    assert step_time_ns(counts(), CHIP) == pytest.approx(8.5 * 2 + 5 * 1 + 10)


def test_shipped_profiles_cite_a_source_for_every_figure():
    for name in ("loihi2", "loihi", "ann_45nm"):
        profile = load_profile(name)
        assert profile.values and set(profile.sources) == set(profile.values)
        assert all(source.strip() for source in profile.sources.values())
        assert set(profile.capacity_sources) == set(profile.capacity)
    assert load_profile("ann_45nm")["mac_pj"] == 4.6


def test_loihi2_says_its_per_operation_figures_are_loihis():
    loihi, loihi2 = load_profile("loihi"), load_profile("loihi2")
    assert loihi2.values == loihi.values  # none published for Loihi 2: borrowed, and marked
    assert "Loihi" in loihi2.per_operation_basis and not loihi.per_operation_basis
    assert all(s.startswith("not published for Loihi 2") for s in loihi2.sources.values())
    assert loihi2.capacity["neurons_per_chip"] == 1e6  # the chip's own published capacity
    assert loihi2.capacity["synapses_per_chip"] == 120e6


def test_chip_fit_counts_neurons_and_dense_synapses():
    capacity = {"neurons_per_chip": 10.0, "synapses_per_chip": 100.0, "neuron_cores_per_chip": 1}
    chip = HardwareProfile("chip", "neuromorphic", "", CHIP.values, {}, capacity, {})
    fit = chip_fit(counts(), chip)  # 3 + 2 neurons; 4 x 3 + 3 x 2 synapses
    assert (fit.neurons, fit.synapses) == (5, 18)
    assert fit.neuron_share == 0.5 and fit.synapse_share == 0.18 and fit.fits_one_chip
    capacity["neurons_per_chip"] = 4.0
    small = HardwareProfile("small", "neuromorphic", "", CHIP.values, {}, capacity, {})
    assert not chip_fit(counts(), small).fits_one_chip
    assert chip_fit(counts(), CHIP) is None  # no published capacity: no claim


def test_a_figure_without_source_is_refused(tmp_path):
    path = tmp_path / "bad.json"
    figures = {"mac_pj": {"value": 1.0, "source": "x"}, "accumulate_pj": {"value": 1.0}}
    path.write_text(json.dumps({"kind": "ann", "figures": figures}))
    with pytest.raises(ProfileError, match="'accumulate_pj' names no published 'source'"):
        load_profile(path)


def test_profiles_of_the_wrong_kind_are_refused():
    with pytest.raises(ProfileError, match="need a neuromorphic and an ANN profile"):
        energy_per_image(counts(), 2, ANN, CHIP)


def test_a_capacity_figure_without_source_is_refused(tmp_path):
    path = tmp_path / "bad.json"
    data = json.loads(PROFILES.joinpath("loihi2.json").read_text())
    del data["capacity"]["synapses_per_chip"]["source"]
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match="'synapses_per_chip' names no published 'source'"):
        load_profile(path)
