"""NIR export of a spiking network: the parameter mapping, graph shapes, round trip, errors."""

from __future__ import annotations

import hashlib
import json
import warnings

import nir
import numpy as np
import pytest
import torch
from norse.torch import LIFBoxCell, LIFBoxParameters, SequentialState
from norse.torch.functional.reset import reset_subtract

from ash_neuro.nir_export import verify
from ash_neuro.nir_export.contract import (
    METADATA_KEY,
    EncoderContract,
    ExportVerificationError,
    NIRExportError,
    read_contract,
    read_sidecar,
    sidecar_path,
)
from ash_neuro.nir_export.mapping import lif_box_to_nir, network_to_nir
from ash_neuro.nir_export.verify import (
    REFERENCE_MIN_AGREEMENT,
    record_spikes,
    run_network,
    run_reference,
    spike_agreement,
)
from ash_neuro.nir_export.writer import export_network

DT = 1e-3


def lif(tau_mem_inv=100.0, v_th=1.0, v_leak=0.0, v_reset=0.0, **kwargs) -> LIFBoxCell:
    p = LIFBoxParameters(
        tau_mem_inv=torch.as_tensor(tau_mem_inv),
        v_th=torch.as_tensor(v_th),
        v_leak=torch.as_tensor(v_leak),
        v_reset=torch.as_tensor(v_reset),
        method="super",
        alpha=torch.as_tensor(100.0),
        **kwargs,
    )
    return LIFBoxCell(p, dt=DT)


def encoder_network(dims=(12, 24, 8), gain=12.0, seed=0) -> SequentialState:
    """A stand-in for SemanticAbstractEncoder.network: Linear and LIFBoxCell, alternating."""
    torch.manual_seed(seed)
    layers = []
    for d_in, d_out in zip(dims[:-1], dims[1:]):
        linear = torch.nn.Linear(d_in, d_out)
        with torch.no_grad():
            linear.weight.mul_(gain)
        layers += [linear, lif()]
    return SequentialState(*layers)


def contract_for(dims=(12, 24, 8), time_steps=6) -> EncoderContract:
    return EncoderContract(
        time_steps=time_steps,
        dt=DT,
        in_dim=dims[0],
        out_dim=dims[-1],
        tokens_per_image=4,
        layer_sizes=tuple(dims[1:]),
        input_encoding="current",
        input_gain=10.0,
        encoding="currents = input_gain * features, the same at every step",
    )


def currents(time_steps=6, rows=64, dim=12, seed=1) -> torch.Tensor:
    return torch.rand(time_steps, rows, dim, generator=torch.Generator().manual_seed(seed)) * 4


# --- the parameter mapping: NIR's equations, integrated by forward Euler, are Norse's -------


def test_lif_mapping_reproduces_norse_membrane_step_by_step():
    """tau = 1/tau_mem_inv, r = 1, v_threshold/v_leak/v_reset copied: a NumPy forward Euler of
    tau dv/dt = (v_leak - v) + r I with Norse's dt follows Norse's membrane exactly."""
    tau_mem_inv = torch.tensor([50.0, 100.0, 200.0, 400.0])
    cell = lif(tau_mem_inv=tau_mem_inv, v_th=0.8, v_leak=0.1, v_reset=-0.2)
    node = lif_box_to_nir(cell, 4)
    np.testing.assert_allclose(node.tau, 1.0 / tau_mem_inv.numpy(), rtol=1e-7)
    np.testing.assert_array_equal(node.r, np.ones(4))
    np.testing.assert_array_equal(node.v_threshold, np.full(4, 0.8, np.float32))
    np.testing.assert_array_equal(node.v_leak, np.full(4, 0.1, np.float32))
    np.testing.assert_array_equal(node.v_reset, np.full(4, -0.2, np.float32))

    inputs = np.array([[3.0, 3.0, 3.0, 3.0], [0.0, 5.0, -1.0, 2.0]] * 10, dtype=np.float32)
    v_nir = node.v_leak.astype(np.float64)  # Norse starts at rest, v = v_leak
    state, spikes = None, 0
    with torch.no_grad():
        for i in inputs:
            z_norse, state = cell(torch.from_numpy(i), state)
            v_nir = v_nir + (DT / node.tau) * ((node.v_leak - v_nir) + node.r * i)
            z_nir = v_nir > node.v_threshold
            v_nir = np.where(z_nir, node.v_reset, v_nir)
            np.testing.assert_array_equal(z_norse.numpy(), z_nir.astype(np.float32))
            np.testing.assert_allclose(state.v.numpy(), v_nir, rtol=1e-5, atol=1e-6)
            spikes += int(z_nir.sum())
    assert spikes > 5  # the comparison covered threshold crossings and resets


def test_default_cell_time_constant_is_ten_milliseconds():
    node = lif_box_to_nir(lif(), 3)
    np.testing.assert_allclose(node.tau, np.full(3, 0.01), rtol=1e-6)


def test_norse_1_1_to_nir_puts_dt_into_tau():
    """Canary for the upstream bug worked around in lif_box_to_nir (norse#411, fixed by
    norse#413 after 1.1.0): `to_nir(..., dt)` writes tau = dt / tau_mem_inv. When this fails,
    the installed norse has the fix; drop the `dt=1.0` in network_to_nir."""
    from norse.torch import to_nir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = to_nir(SequentialState(torch.nn.Linear(2, 2), lif()), torch.zeros(1, 2), dt=DT)
    assert np.isclose(float(graph.nodes["1"].tau), DT / 100.0)


def test_numpy_reference_agrees_with_norse_on_a_network():
    network = encoder_network()
    graph = network_to_nir(network)
    x = currents()
    reference = run_reference(graph, x.numpy(), DT)["output"]
    norse_out = run_network(network, x).numpy()
    assert norse_out.mean() > 0.02  # not a vacuous comparison
    np.testing.assert_array_equal(reference, norse_out)


def test_numpy_reference_rejects_norse_1_1_time_constants():
    """A graph with norse 1.1.0's tau = dt / tau_mem_inv means something else entirely."""
    network = encoder_network()
    graph = network_to_nir(network)
    for node in graph.nodes.values():
        if isinstance(node, nir.LIF):
            node.tau = node.tau * np.float32(DT)
    x = currents()
    with np.errstate(all="ignore"):
        wrong = run_reference(graph, x.numpy(), DT)
    norse_spikes = record_spikes(network, lambda: run_network(network, x))
    assert spike_agreement(norse_spikes, wrong)["all"] < REFERENCE_MIN_AGREEMENT


# --- the graph ------------------------------------------------------------------------------


def test_graph_types_are_per_neuron_and_type_check():
    graph = network_to_nir(encoder_network(dims=(12, 24, 8)))
    assert [type(graph.nodes[k]).__name__ for k in ("input", "0", "1", "2", "3", "output")] == [
        "Input",
        "Affine",
        "LIF",
        "Affine",
        "LIF",
        "Output",
    ]
    for name, size in (("1", 24), ("3", 8)):
        node = graph.nodes[name]
        for key in ("tau", "r", "v_leak", "v_threshold", "v_reset"):
            value = getattr(node, key)
            assert isinstance(value, np.ndarray) and value.shape == (size,), key
        assert list(node.input_type["input"]) == [size]
        assert list(node.output_type["output"]) == [size]
    assert list(graph.nodes["input"].input_type["input"]) == [12]
    assert list(graph.nodes["output"].output_type["output"]) == [8]
    assert isinstance(graph.nodes["0"].weight, np.ndarray)
    assert graph.check_types()


def test_per_neuron_parameters_are_kept_and_wrong_shapes_rejected():
    node = lif_box_to_nir(lif(v_th=torch.tensor([0.5, 1.0, 1.5])), 3)
    np.testing.assert_array_equal(node.v_threshold, np.array([0.5, 1.0, 1.5], np.float32))
    with pytest.raises(NIRExportError, match="v_th has shape \\(2,\\)"):
        lif_box_to_nir(lif(v_th=torch.tensor([0.5, 1.0])), 3, "1")


# --- export and verification ----------------------------------------------------------------


def test_round_trip_agrees_completely(tmp_path):
    network, contract = encoder_network(), contract_for()
    report = export_network(network, contract, tmp_path / "encoder.nir", currents())
    assert report.agreement["output"] == 1.0 and report.agreement["all"] == 1.0
    assert report.reference_agreement["all"] == 1.0
    assert report.output_spike_rate > 0.02
    assert report.node_types == ["Input", "Affine", "LIF", "Affine", "LIF", "Output"]
    assert read_contract(report.path) == contract
    sidecar = json.loads(sidecar_path(report.path).read_text())
    # the sidecar names the very graph file it was written with
    assert sidecar.pop("graph_sha256") == hashlib.sha256(report.path.read_bytes()).hexdigest()
    assert EncoderContract.from_dict(sidecar) == contract
    assert read_sidecar(report.path) == contract
    assert sidecar["dt"] == DT and sidecar["time_steps"] == 6
    graph = nir.read(report.path)
    assert graph.metadata[METADATA_KEY] == contract.to_json()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["encoder.nir", "encoder.nir.json"]


def test_a_graph_that_disagrees_is_not_written(tmp_path, monkeypatch):
    def run_skewed(graph, x, dt):
        spikes = run_from_nir(graph, x, dt)
        spikes["output"] = 1 - spikes["output"]
        return spikes

    run_from_nir = verify.run_from_nir
    monkeypatch.setattr(verify, "run_from_nir", run_skewed)
    with pytest.raises(ExportVerificationError, match="not 100%"):
        export_network(encoder_network(), contract_for(), tmp_path / "encoder.nir", currents())
    assert list(tmp_path.iterdir()) == []


class Scale(torch.nn.Module):
    def forward(self, x):
        return 2 * x


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        (
            lambda: [torch.nn.Linear(4, 4), torch.nn.Dropout(0.1), lif()],
            r"layer 1 \(torch.nn.modules.dropout.Dropout\) cannot be exported",
        ),
        (lambda: [torch.nn.Linear(4, 4), Scale(), lif()], r"layer 1 \(.*Scale\) cannot be"),
        (lambda: [torch.nn.Linear(4, 4), lif(reset_method=reset_subtract)], "reset_subtract"),
        (lambda: [torch.nn.Linear(4, 4)], "is not a LIFBoxCell"),
    ],
)
def test_unsupported_layer_is_named(layers, message, tmp_path):
    network = SequentialState(*layers())
    with pytest.raises(NIRExportError, match=message):
        export_network(network, contract_for((4, 4)), tmp_path / "e.nir", currents(dim=4))
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_is_one_line_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    for target in (tmp_path, blocker / "encoder.nir"):
        with pytest.raises(NIRExportError, match="cannot write") as info:
            export_network(encoder_network(), contract_for(), target, currents())
        assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"time_steps": 0}, "time_steps must be a positive integer"),
        ({"dt": -1e-3}, "dt must be a positive number"),
        ({"input_encoding": "rate"}, "input_encoding must be one of current, poisson"),
        ({"layer_sizes": (24, 9)}, "the last layer has 9 neurons, not 8"),
    ],
)
def test_contract_validates_itself(change, message):
    data = {**contract_for().to_dict(), **change}
    with pytest.raises(NIRExportError, match=message):
        EncoderContract.from_dict(data)
    with pytest.raises(NIRExportError, match="unknown keys colour"):
        EncoderContract.from_dict({**contract_for().to_dict(), "colour": "red"})


# --- an independent simulator ---------------------------------------------------------------


def test_snntorch_runs_the_graph_like_norse(tmp_path):
    """snnTorch's NIR import (snntorch==1.0.0) reads the exported graph to the same spikes.

    Documented differences, none of which this graph exercises or which are undone here:
    - snnTorch's `import_from_nir` fixes its step to dt = 1e-4 s (snntorch/import_nir.py), so
      the graph, exported for dt = 1e-3 s, is handed over with every tau scaled by 1e-4 / dt:
      a NIR graph is continuous-time, and time constants scaled by k integrated with step k*dt
      give the same discrete system (dt/tau unchanged).
    - It maps LIF to `Leaky(beta = 1 - dt/tau, threshold = v_th / (r dt / tau))`, i.e. forward
      Euler of v scaled by 1 / (r dt / tau); rounding in that division may in principle flip a
      spike that lands within ~1e-7 of threshold. None occurs on this input.
    - It resets to zero (not v_reset), starts from v = 0 (not v_leak) and requires v_leak = 0;
      the encoder's v_leak = v_reset = 0, so these coincide.
    - Threshold `mem > threshold` (strict) and reset in the same step (reset_delay=False), as in
      Norse and NIR; no extra step of delay between layers.
    """
    pytest.importorskip("snntorch")
    from snntorch.import_nir import import_from_nir

    network, contract = encoder_network(), contract_for()
    x = currents()
    report = export_network(network, contract, tmp_path / "encoder.nir", x)
    graph = nir.read(report.path)
    for node in graph.nodes.values():
        if isinstance(node, nir.LIF):
            node.tau = node.tau * np.float32(1e-4 / DT)
    module = import_from_nir(graph)
    with torch.no_grad():
        snn_out = torch.stack([module(step)[0] for step in x]).numpy()
    norse_out = run_network(network, x).numpy()
    assert norse_out.mean() > 0.02
    np.testing.assert_array_equal(snn_out, norse_out)


def test_a_contract_that_does_not_describe_the_network_is_refused(tmp_path):
    wrong = EncoderContract.from_dict({**contract_for().to_dict(), "layer_sizes": [20, 8]})
    with pytest.raises(NIRExportError, match=r"do not match the graph's 12, 8, \(24, 8\)"):
        export_network(encoder_network(), wrong, tmp_path / "encoder.nir", currents())
