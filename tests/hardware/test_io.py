"""hardware/io.py: in.h5 and out.h5 round trips and one-line errors (no Lava needed)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from lava_helpers import quantisation_report

from hardware.io import (
    HarnessFileError,
    LavaResult,
    read_inputs,
    read_outputs,
    write_inputs,
    write_outputs,
)


def test_inputs_round_trip_as_float32_read_as_float64(tmp_path):
    inputs = np.random.default_rng(0).normal(size=(3, 5, 2, 4))
    path = write_inputs(tmp_path / "in.h5", inputs)
    back = read_inputs(path, (2, 4))
    assert back.dtype == np.float64
    np.testing.assert_array_equal(back, inputs.astype(np.float32))


@pytest.mark.parametrize(
    ("inputs", "shape", "message"),
    [
        (np.ones((2, 3, 5)), (6,), r"input has shape \(2, 3, 5\), expected \(samples, T, 6\)"),
        (np.ones((0, 3, 6)), (6,), "input has no samples or no time steps"),
        (np.full((1, 2, 6), np.nan), (6,), "input contains NaN or infinite values"),
    ],
)
def test_bad_inputs_are_one_line_errors(tmp_path, inputs, shape, message):
    path = write_inputs(tmp_path / "in.h5", inputs)
    with pytest.raises(HarnessFileError, match=message) as info:
        read_inputs(path, shape)
    assert "\n" not in str(info.value)
    with pytest.raises(HarnessFileError, match="does not exist"):
        read_inputs(tmp_path / "absent.h5", shape)


def test_outputs_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    spikes = {
        "lif1": (rng.uniform(size=(2, 4, 3)) < 0.5).astype(np.float32),
        "block/lif2": (rng.uniform(size=(2, 4, 5)) < 0.5).astype(np.float32),
    }
    result = LavaResult(
        output=spikes["block/lif2"],
        activity={name: trains.sum(axis=1) for name, trains in spikes.items()},
        latency={"lif1": 1, "block/lif2": 2},
        spikes=spikes,
        attrs={"mode": "fixed_pt", "dt": 1e-3},
        kinds={"lif1": "LIF", "block/lif2": "CubaLIF"},
        quantisation=quantisation_report({"lif1": (0.25, 0, 24), "block/lif2": (1.5, 3, 40)}),
    )
    path = tmp_path / "out.h5"
    write_outputs(path, result)
    back = read_outputs(path)
    np.testing.assert_array_equal(back.output, result.output)
    assert back.output.dtype == np.float32
    for name in spikes:
        np.testing.assert_array_equal(back.activity[name], result.activity[name])
        np.testing.assert_array_equal(back.spikes[name], spikes[name])
        assert back.spikes[name].dtype == np.float32
    assert back.latency == result.latency and back.kinds == result.kinds
    assert back.attrs == {**result.attrs, "samples": 2, "time_steps": 4}
    assert back.quantisation == result.quantisation  # the record, read back from its JSON
    assert [p.name for p in tmp_path.iterdir()] == ["out.h5"]


def test_outputs_without_spike_trains(tmp_path):
    result = LavaResult(np.zeros((1, 2, 3), np.float32), {"n": np.zeros((1, 3))}, {"n": 1})
    write_outputs(tmp_path / "out.h5", result)
    back = read_outputs(tmp_path / "out.h5")
    assert back.spikes == {} and back.quantisation is None  # floating_pt: nothing quantised


def test_an_invalid_quantisation_report_is_a_one_line_error(tmp_path):
    result = LavaResult(np.zeros((1, 2, 3), np.float32), {}, {})
    write_outputs(tmp_path / "out.h5", result)
    with h5py.File(tmp_path / "out.h5", "a") as f:
        f.attrs["quantisation"] = "quantise: vth 16384"  # the prose of earlier versions
    with pytest.raises(HarnessFileError, match="cannot read .*invalid quantisation report"):
        read_outputs(tmp_path / "out.h5")


def test_unwritable_and_unreadable_outputs_are_one_line_errors(tmp_path):
    result = LavaResult(np.zeros((1, 2, 3), np.float32), {}, {})
    with pytest.raises(HarnessFileError, match="cannot write"):
        write_outputs(tmp_path / "absent" / "out.h5", result)
    (tmp_path / "out.h5").write_bytes(b"not HDF5")
    with pytest.raises(HarnessFileError, match="cannot read"):
        read_outputs(tmp_path / "out.h5")
