"""ash_neuro.energy: operation counts times per-operation figures, on hand-made counts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ash_neuro.deploy.encoder_runs import activity_counts, host_work
from ash_neuro.energy import (
    PROFILES,
    HardwareProfile,
    HostWork,
    LayerCounts,
    ProfileError,
    barrier_sync_ns,
    chip_fit,
    chip_mapping,
    energy_per_image,
    load_profile,
    step_time_ns,
)
from ash_neuro.nir_export.contract import EncoderContract

FIGURES = {
    "synaptic_op_pj": 1.0,
    "synaptic_op_ns": 2.0,
    "synaptic_update_pj": 100.0,
    "synaptic_update_ns": 50.0,
    "neuron_update_active_pj": 10.0,
    "neuron_update_active_ns": 1.0,
    "neuron_update_inactive_pj": 6.0,
    "neuron_update_inactive_ns": 0.5,
    "spike_within_tile_pj": 0.5,
    "tile_hop_ew_pj": 3.0,
    "tile_hop_ns_pj": 5.0,
    "barrier_sync_one_tile_ns": 10.0,
    "barrier_sync_all_tiles_ns": 40.0,
    "barrier_sync_all_tiles": 4.0,
    "spike_bandwidth_per_tile_gspikes": 1.0,
}
CHIP = HardwareProfile("chip", "neuromorphic", "round numbers", FIGURES, {})
ANN = HardwareProfile("ann", "ann", "round numbers", {"mac_pj": 4.0, "accumulate_pj": 1.0}, {})
INT8 = HardwareProfile("int8", "ann", "round numbers", {"mac_pj": 0.5, "accumulate_pj": 0.1}, {})


def counts():
    # 4 inputs -> 3 -> 2 neurons; per image 2 token rows of T = 2 steps: 8 non-zero graded
    # inputs, 5 spikes in lif1 and 1 in lif2; 12 updates of lif1 (9 active), 8 of lif2 (3)
    return [
        LayerCounts("lif1", 3, 4, 3, 12, 8.0, True, 5.0, 12.0, 9.0),
        LayerCounts("lif2", 2, 3, 2, 6, 5.0, False, 1.0, 8.0, 3.0),
    ]


def test_energy_of_hand_made_counts():
    first, second = energy_per_image(counts(), rows_per_image=2, chip=CHIP, ann=ANN, int8=INT8)
    # lif1: 8 inputs x 3 targets = 24 synaptic ops; 9 active + 3 inactive updates; 8 messages
    assert (first.synaptic_ops, first.neuron_updates, first.messages) == (24, 12, 8)
    assert (first.synaptic_pj, first.neuron_pj, first.message_pj) == (24, 9 * 10 + 3 * 6, 4)
    assert first.snn_pj == 24 + 108 + 4
    assert (first.snn_on_ann_pj, first.snn_on_int8_pj) == (24 * 4.0, 24 * 0.5)  # graded: MACs
    assert (first.ann_macs, first.ann_pj, first.ann_int8_pj) == (4 * 3 * 2, 96, 12)
    # lif2: 5 spikes x 2 targets = 10 ops; 3 active + 5 inactive updates; 5 messages
    assert (second.synaptic_pj, second.neuron_pj, second.message_pj) == (10, 30 + 30, 2.5)
    assert (second.snn_on_ann_pj, second.snn_on_int8_pj) == (10 * 1.0, 10 * 0.1)  # spikes: adds
    assert (second.ann_macs, second.ann_pj) == (3 * 2 * 2, 48)
    assert first.learning_pj == second.learning_pj == 0  # no on-chip learning in inference


def test_messages_across_tiles_pay_the_mean_hop():
    first, _ = energy_per_image(counts(), 2, CHIP, ANN, INT8, hops_per_message=1.0)
    assert first.message_pj == 8 * (0.5 + (3.0 + 5.0) / 2)


def test_host_work_is_priced_on_an_ann_profile():
    assert HostWork(macs=10, accumulates=4).pj(ANN) == 10 * 4.0 + 4 * 1.0
    assert HostWork().pj(INT8) == 0


def test_barrier_sync_interpolates_the_tiles_in_use():
    assert barrier_sync_ns(1, CHIP) == 10.0
    assert barrier_sync_ns(2, CHIP) == 20.0  # a third of the way from 1 to 4 tiles
    assert barrier_sync_ns(4, CHIP) == 40.0
    assert barrier_sync_ns(9, CHIP) == 40.0  # beyond one chip: not modelled, the top figure


def capacity(neurons, synapses, cores=4, per_tile=2):
    keys = ("neurons_per_chip", "synapses_per_chip", "neuron_cores_per_chip", "cores_per_tile")
    values = dict(zip(keys, (neurons, synapses, cores, per_tile)))
    return HardwareProfile("chip", "neuromorphic", "", FIGURES, {}, values, {})


def test_mapping_spreads_copies_over_cores_and_tiles():
    # one copy of 2 populations: a core each; a core holds 40 / 4 = 10 neurons, 400 / 4 = 100
    # synapses; 2 cores to a tile
    small = chip_mapping(counts(), 1, capacity(40, 400))
    assert (small.neurons, small.synapses, small.cores, small.tiles) == (5, 18, 2, 1)
    assert small.hops_per_message == 0 and small.barrier_sync_ns == 10.0
    # five copies: 10 population copies, but the chip has 4 cores (25 neurons fit in 3): 4
    # cores on 2 tiles
    five = chip_mapping(counts(), 5, capacity(40, 400))
    assert (five.neurons, five.synapses, five.cores, five.tiles) == (25, 90, 4, 2)
    assert five.hops_per_message == 1 and five.barrier_sync_ns == 20.0
    # by synapses: 90 synapses at 20 per core need 5 cores (more than one chip's), 3 tiles
    assert chip_mapping(counts(), 5, capacity(400, 80)).cores == 5


def test_step_time_is_the_busiest_core_or_the_spike_traffic_plus_barrier():
    one = chip_mapping(counts(), 1, capacity(40, 400))
    # per image: 24 + 10 synaptic ops x 2 ns, 12 active x 1 ns, 8 inactive x 0.5 ns = 84 ns
    # over 4 steps on 2 cores = 10.5 ns; 13 messages / 4 steps at 1 spike/ns = 3.25 ns
    assert step_time_ns(counts(), CHIP, one, steps_per_image=4) == pytest.approx(10.5 + 10)
    # the same work over 2 steps on 4 cores of 2 tiles: 84 / 2 / 4 = 10.5 ns, barrier 20 ns
    five = chip_mapping(counts(), 5, capacity(40, 400))
    assert step_time_ns(counts(), CHIP, five, steps_per_image=2) == pytest.approx(10.5 + 20)
    # traffic dominates when a spike takes 10 ns: 13 messages / 2 steps / (2 tiles x 0.1)
    slow = HardwareProfile(
        "slow", "neuromorphic", "", {**FIGURES, "spike_bandwidth_per_tile_gspikes": 0.1}, {}
    )
    assert step_time_ns(counts(), slow, five, steps_per_image=2) == pytest.approx(32.5 + 20)


def test_shipped_profiles_cite_a_source_for_every_figure():
    for name in ("loihi2", "loihi", "ann_45nm", "ann_45nm_int8"):
        profile = load_profile(name)
        assert profile.values and set(profile.sources) == set(profile.values)
        assert all(source.strip() for source in profile.sources.values())
        assert set(profile.capacity_sources) == set(profile.capacity)
    assert load_profile("ann_45nm")["mac_pj"] == 4.6
    assert load_profile("ann_45nm_int8")["mac_pj"] == 0.2 + 0.03  # Horowitz: 8-bit mul + add


def test_loihi_figures_are_davies_table_2():
    """Davies et al. 2018, Table 2 (Table 1 of that paper is the learning rule's)."""
    loihi = load_profile("loihi")
    table_2 = {
        "synaptic_op_pj": 23.6,
        "synaptic_op_ns": 3.5,
        "synaptic_update_pj": 120,
        "synaptic_update_ns": 6.1,
        "neuron_update_active_pj": 81,
        "neuron_update_active_ns": 8.4,
        "neuron_update_inactive_pj": 52,
        "neuron_update_inactive_ns": 5.3,
        "spike_within_tile_pj": 1.7,
        "tile_hop_ew_pj": 3.0,
        "tile_hop_ns_pj": 4.0,
        "barrier_sync_one_tile_ns": 113,
        "barrier_sync_all_tiles_ns": 465,
        "barrier_sync_all_tiles": 32,
        "spike_bandwidth_per_tile_gspikes": 3.44,
    }
    assert loihi.values == table_2
    for profile in (loihi, load_profile("loihi2")):
        sources = " ".join(profile.sources.values()) + profile.per_operation_basis
        assert "Table 1" not in sources and "Table 2" in sources


def test_loihi2_says_its_per_operation_figures_are_loihis():
    loihi, loihi2 = load_profile("loihi"), load_profile("loihi2")
    assert loihi2.values == loihi.values  # none published for Loihi 2: borrowed, and marked
    assert "Loihi" in loihi2.per_operation_basis and not loihi.per_operation_basis
    assert all(s.startswith("not published for Loihi 2") for s in loihi2.sources.values())
    assert loihi2.capacity["neurons_per_chip"] == 1e6  # the chip's own published capacity
    assert loihi2.capacity["synapses_per_chip"] == 120e6


def test_chip_fit_counts_every_copy():
    chip = capacity(10.0, 100.0, cores=1)
    fit = chip_fit(counts(), chip)  # 3 + 2 neurons; 4 x 3 + 3 x 2 synapses
    assert (fit.neurons, fit.synapses) == (5, 18)
    assert fit.neuron_share == 0.5 and fit.synapse_share == 0.18 and fit.fits_one_chip
    two = chip_fit(counts(), chip, copies=2)  # the token-parallel layout of two rows
    assert (two.neurons, two.synapses) == (10, 36) and two.fits_one_chip
    assert not chip_fit(counts(), chip, copies=3).fits_one_chip
    assert chip_fit(counts(), CHIP) is None  # no published capacity: no claim


def test_a_figure_without_source_is_refused(tmp_path):
    path = tmp_path / "bad.json"
    figures = {"mac_pj": {"value": 1.0, "source": "x"}, "accumulate_pj": {"value": 1.0}}
    path.write_text(json.dumps({"kind": "ann", "figures": figures}))
    with pytest.raises(ProfileError, match="'accumulate_pj' names no published 'source'"):
        load_profile(path)


def test_profiles_of_the_wrong_kind_are_refused():
    with pytest.raises(ProfileError, match="need a neuromorphic and two ANN profiles"):
        energy_per_image(counts(), 2, ANN, CHIP, INT8)


def test_a_capacity_figure_without_source_is_refused(tmp_path):
    path = tmp_path / "bad.json"
    data = json.loads(PROFILES.joinpath("loihi2.json").read_text())
    del data["capacity"]["synapses_per_chip"]["source"]
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match="'synapses_per_chip' names no published 'source'"):
        load_profile(path)


def tiny_contract(**changes) -> EncoderContract:
    # 2 token rows per image of T = 2 steps, 3 inputs -> 2 -> 2 neurons
    fields = dict(input_encoding="current", input_gain=1.0, encoding="test") | changes
    return EncoderContract(2, 1e-3, 3, 2, 2, (2, 2), **fields)


def test_activity_counts_worked_by_hand():
    currents = np.zeros((2, 2, 3))
    currents[0, 0] = [1, 0, 2]  # 2 events reach row 0 at step 0
    currents[1, 1] = [0.5, 0, 0]  # 1 event reaches row 1 at step 1
    lif1 = np.zeros((2, 2, 2))
    lif1[0, 0] = [1, 0]
    lif1[0, 1] = [0, 1]  # a spike without input (bias): active too
    lif1[1, 1] = [1, 1]
    lif2 = np.zeros((2, 2, 2))
    lif2[0, 0] = [0, 1]
    first, second = activity_counts(tiny_contract(), currents, {"lif1": lif1, "lif2": lif2}, 1)
    # lif1: 3 graded events x 2 synapses; rows reached in 2 (step, row) pairs: 2 x 2 active
    # updates, plus the spike of row 1 at step 0: 5 of 8
    assert (first.input_events, first.synaptic_ops, first.graded) == (3, 6, True)
    assert (first.neuron_updates, first.active_updates, first.spikes) == (8, 5, 4)
    assert (first.synapses, first.ann_fan_in) == (6, 3)
    # lif2: lif1's 4 spikes reach 3 (step, row) pairs: 6 active; binary events
    assert (second.input_events, second.synaptic_ops, second.graded) == (4, 8, False)
    assert (second.active_updates, second.inactive_updates) == (6, 2)


def test_activity_counts_with_the_first_layer_on_the_host():
    host_currents = np.zeros((2, 2, 2))
    host_currents[0, 0] = [0.3, 0]
    host_currents[1, 0] = [0.1, 0.2]
    lif1 = np.zeros((2, 2, 2))
    lif1[0, 0] = [1, 0]
    lif1[0, 1] = [0, 1]
    lif1[1, 1] = [1, 1]
    lif2 = np.zeros((2, 2, 2))
    contract = tiny_contract(first_layer="host")
    first, _ = activity_counts(contract, host_currents, {"lif1": lif1, "lif2": lif2}, 1)
    # one-to-one: 3 events, one synapse each; a neuron is active where its own input or
    # spike is: 1 + 1 + 2 + 2 = 6 of 8
    assert (first.input_events, first.synaptic_ops, first.synapses) == (3, 3, 2)
    assert first.active_updates == 6 and first.graded
    assert first.ann_fan_in == 3  # the ANN-equivalent is still the whole Affine
    # the host's Affine: once per token row, 2 rows x 3 x 2 MACs (current coding)
    assert host_work(contract, np.ones((2, 2, 3)), 1) == HostWork(macs=12)
    # poisson: every step's spikes, 2 accumulates (the width) per input spike, per image
    poisson = tiny_contract(first_layer="host", input_encoding="poisson")
    spikes = np.zeros((2, 4, 3))
    spikes[0, :, 0] = 1.0
    assert host_work(poisson, spikes, 2) == HostWork(accumulates=4 * 2 / 2)
    assert host_work(tiny_contract(), spikes, 2) == HostWork()  # first layer on the chip
