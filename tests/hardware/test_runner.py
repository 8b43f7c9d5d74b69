"""hardware/runner.py: the main environment's door to Lava (no Lava import on this side)."""

from __future__ import annotations

import numpy as np
import pytest
from lava_helpers import DT

from ash_neuro.nir_export.reference import simulate as reference
from hardware.runner import LavaError, run_on_lava, simulate_on_lava


def test_run_on_lava_returns_aligned_spikes_and_activity(lava, lif_graph, currents):
    path, graph = lif_graph
    outputs, activity = run_on_lava(path, currents, mode="floating_pt")
    expected = reference(graph, currents.astype(np.float32).astype(np.float64), DT)
    np.testing.assert_array_equal(outputs, expected["output"])
    assert set(activity) == {"lif1", "lif2"}
    np.testing.assert_array_equal(activity["lif1"], expected["lif1"].sum(axis=1))
    assert activity["lif2"].shape == (6, 4)


def test_simulate_on_lava_records_every_layer_step_by_step(lava, lif_graph, currents):
    path, graph = lif_graph
    result = simulate_on_lava(path, currents, record_spikes=True)
    expected = reference(graph, currents.astype(np.float32).astype(np.float64), DT)
    for layer in ("lif1", "lif2"):
        np.testing.assert_array_equal(result.spikes[layer], expected[layer])
    assert result.latency == {"lif1": 1, "lif2": 2}
    assert result.attrs["mode"] == "floating_pt" and result.attrs["ms_per_step"] > 0


def test_run_on_lava_raises_simulate_one_line_error(lava, lif_graph):
    path, _ = lif_graph
    with pytest.raises(LavaError, match=r"input has shape \(2, 3, 5\), expected \(samples, T, 6\)"):
        run_on_lava(path, np.zeros((2, 3, 5)))


def test_missing_lava_environment_says_make_lava_env(monkeypatch, tmp_path):
    monkeypatch.setenv("ASH_LAVA_PYTHON", str(tmp_path / "no-python"))
    with pytest.raises(LavaError, match=r"run `make lava-env`"):
        run_on_lava(tmp_path / "encoder.nir", np.zeros((1, 2, 3)))


def test_unknown_mode_is_refused(lif_graph):
    with pytest.raises(LavaError, match="unknown mode 'float'"):
        run_on_lava(lif_graph[0], np.zeros((1, 2, 6)), mode="float")
