"""export/to_netx.py: NIR graphs as lava-dl netx files. lava-dl's own `netx.hdf5.Network` loads
each file and its fixed_pt run on Lava's simulator equals, spike for spike and layer for layer,
the harness's fixed_pt run of the same graph on the same integers (`--quantise-as netx`); the
graphs netx cannot express are one-line refusals."""

from __future__ import annotations

import subprocess
import sys

import nir
import numpy as np
import pytest
import torch
from lava_helpers import chain, lif
from test_peer_graphs import (
    NORSE_DT,
    SNNTORCH_DT,
    ZERO_RESET,
    currents,
    lif_box_net,
    linear,
    repair_norse,
    snn,
    to_nir,
)

from hardware.io import write_inputs
from hardware.runner import simulate_on_lava
from tests.conftest import ROOT

pytestmark = pytest.mark.filterwarnings("ignore:nirtorch.extract_nir_graph:DeprecationWarning")
TO_NETX = ROOT / "export" / "to_netx.py"
RUN_NETX = (
    "import sys, numpy as np; sys.path.insert(0, {root!r}); from hardware.netx import run_netx; "
    "from hardware.io import read_inputs; x = read_inputs({inputs!r}, {shape!r}); "
    "np.savez({out!r}, **run_netx({net!r}, x.reshape(x.shape[0], x.shape[1], -1)))"
)


def to_netx(lava, graph, net, *args) -> subprocess.CompletedProcess:
    command = [str(lava), str(TO_NETX), str(graph), "-o", str(net), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def netx_and_harness(lava, tmp_path, graph: nir.NIRGraph, inputs: np.ndarray, dt, scheme):
    """(netx's spikes, the harness's spikes), each {node: (samples, T, size)}, of `graph` on
    `inputs`, both calibrated on the inputs themselves."""
    path, net, cal = tmp_path / "g.nir", tmp_path / "g.net", tmp_path / "cal.h5"
    nir.write(path, graph)
    write_inputs(cal, inputs)
    done = to_netx(lava, path, net, "--quantise-on", str(cal), "--dt", repr(dt), "--scheme", scheme)
    assert done.returncode == 0, done.stderr
    assert "load it: lava.lib.dl.netx.hdf5.Network(net_config='g.net'" in done.stdout
    harness = simulate_on_lava(
        path, inputs, "fixed_pt", dt, record_spikes=True, quantise_on=cal, scheme=scheme,
        quantise_as="netx",
    )  # fmt: skip
    assert harness.attrs["quantise_as"] == "netx"
    out = tmp_path / "netx.npz"
    code = RUN_NETX.format(
        root=str(ROOT), inputs=str(cal), shape=inputs.shape[2:], out=str(out), net=str(net)
    )
    done = subprocess.run([str(lava), "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with np.load(out) as netx:
        return {name: netx[name] for name in netx.files}, harness.spikes


def assert_equal_spikes(netx: dict, harness: dict, label: str) -> None:
    assert netx.keys() == harness.keys()
    for name in netx:
        trains = harness[name].reshape(netx[name].shape)
        assert 0.02 < trains.mean() < 0.9, f"{label}: layer {name} rate {trains.mean():.3f}"
        np.testing.assert_array_equal(netx[name], trains, err_msg=f"{label}: {name}")
    print(f"netx = harness on {label}: {sum(t.size for t in netx.values())} spike entries equal")


def test_netx_runs_the_harness_integers_spike_for_spike(lava_dl, tmp_path):
    """Affine -> LIF -> Linear -> CubaLIF (semi-implicit: netx's CUBA neuron), graded input."""
    rng = np.random.default_rng(0)
    ones = np.ones(4)
    cuba = nir.CubaLIF(
        tau_syn=4e-3 * ones, tau_mem=1e-2 * ones, r=ones, v_leak=0 * ones, v_threshold=ones
    )
    graph = chain(
        [6],
        ("fc1", nir.Affine(rng.normal(0.2, 0.6, (10, 6)), rng.normal(0, 0.2, 10))),
        ("lif", lif(10)),
        ("fc2", nir.Linear(rng.normal(1.0, 3.0, (4, 10)))),
        ("cuba", cuba),
        output_shape=[4],
    )
    inputs = rng.uniform(0, 3, (6, 30, 6))
    netx, harness = netx_and_harness(lava_dl, tmp_path, graph, inputs, 1e-3, "semi-implicit")
    assert_equal_spikes(netx, harness, "an Affine/LIF/Linear/CubaLIF chain")


@pytest.mark.slow
def test_netx_on_the_peer_graphs_it_can_express(lava_dl, tmp_path):
    """snnTorch Leaky (one beta per layer), snnTorch Synaptic (bias-free Linear, semi-implicit)
    and Norse LIFBoxCell (one tau per layer, repaired as in tests/hardware/test_peer_graphs.py)."""
    from snntorch.export_nir import export_to_nir

    x = currents(3.0)

    def leaky(n, beta):
        return snn.Leaky(beta=torch.full((n,), beta), threshold=torch.ones(n), **ZERO_RESET)

    def synaptic(n, alpha, beta):
        return snn.Synaptic(
            alpha=torch.full((n,), alpha),
            beta=torch.full((n,), beta),
            threshold=torch.ones(n),
            reset_delay=False,
            **ZERO_RESET,
        )

    leaky_net = torch.nn.Sequential(
        linear(6, 16, 1.0, seed=0), leaky(16, 0.8), linear(16, 8, 3.0, seed=2), leaky(8, 0.7)
    )
    synaptic_net = torch.nn.Sequential(
        torch.nn.Linear(6, 16, bias=False),
        synaptic(16, 0.7, 0.8),
        torch.nn.Linear(16, 8, bias=False),
        synaptic(8, 0.6, 0.8),
    )
    torch.manual_seed(5)
    with torch.no_grad():
        for layer in synaptic_net[0], synaptic_net[2]:
            layer.weight.mul_(2.0)
        graphs = {
            "snnTorch Leaky": (export_to_nir(leaky_net, x[0, 0]), SNNTORCH_DT, "explicit", 1.0),
            "snnTorch Synaptic": (
                export_to_nir(synaptic_net, x[0, 0]),
                SNNTORCH_DT,
                "semi-implicit",
                0.5,
            ),
            "Norse LIFBoxCell": (
                repair_norse(to_nir(lif_box_net(tau=0.01), x[0, 0])),
                NORSE_DT,
                "explicit",
                1.0,
            ),
        }
    for label, (graph, dt, scheme, scale) in graphs.items():
        inputs = np.moveaxis(x.numpy(), 0, 1) * scale
        netx, harness = netx_and_harness(lava_dl, tmp_path, graph, inputs, dt, scheme)
        assert_equal_spikes(netx, harness, label)


@pytest.mark.slow
def test_netx_runs_the_exported_encoder_of_a_trained_checkpoint(lava_dl, tiny_config, tmp_path):
    """The default encoder structure (Affine/LIF chain): a tiny checkpoint trained 3 steps,
    exported by export/to_nir.py, fed the currents of its own visual encoder."""
    import dataclasses

    from ash_neuro.models.factory import load_model
    from ash_neuro.nir_export.from_checkpoint import sample_images
    from ash_neuro.train import train

    cfg = dataclasses.replace(
        tiny_config, train=dataclasses.replace(tiny_config.train, max_steps=3)
    )
    train(cfg, tmp_path / "run")
    graph = tmp_path / "encoder.nir"
    command = [
        sys.executable,
        str(ROOT / "export" / "to_nir.py"),
        str(tmp_path / "run" / "ckpt.pt"),
    ]
    done = subprocess.run(command + ["-o", str(graph)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    loaded = load_model(tmp_path / "run" / "ckpt.pt")
    visual = loaded.backbone.visual_concrete_encoder
    encoder = loaded.backbone.semantic_abstract_encoder
    images, _, _ = sample_images(str(tiny_config.world.path), 4, visual.image_size, seed=0)
    with torch.no_grad():
        x = encoder.encode_input(visual(images).tokens, torch.Generator().manual_seed(0))
    inputs = np.moveaxis(x.numpy(), 0, 1)
    netx, harness = netx_and_harness(
        lava_dl, tmp_path, nir.read(graph), inputs, encoder.dt, "explicit"
    )
    assert list(netx) == ["1", "3"]  # the exporter's two LIF layers
    assert_equal_spikes(netx, harness, "the encoder of a trained checkpoint")


def refused(case: str) -> nir.NIRGraph:
    n = 4
    fc = nir.Affine(np.ones((n, 6)), np.zeros(n))
    ones = np.ones(n)
    cuba = nir.CubaLIF(
        tau_syn=ones * 5e-3, tau_mem=ones * 1e-2, r=ones, v_leak=0 * ones, v_threshold=ones
    )
    neurons = {
        "recurrent": [("lif", lif(n))],
        "readout": [("li", nir.LI(ones * 1e-2, ones, 0 * ones))],
        "per-neuron decays": [("lif", lif(n, tau=[0.01, 0.02, 0.01, 0.01]))],
        "rest": [("lif", lif(n, v_leak=0.5))],
        "explicit CubaLIF": [("cuba", cuba)],
        "not a chain": [("a", lif(n)), ("wa", nir.Linear(np.eye(n))), ("c", lif(n))],
    }[case]
    first = ("w0", nir.Linear(np.ones((n, 6)))) if case == "explicit CubaLIF" else ("fc", fc)
    graph = chain([6], first, *neurons, output_shape=[n])
    if case == "recurrent":
        graph.nodes["rec"] = nir.Linear(np.eye(n))
        graph.edges += [("lif", "rec"), ("rec", "lif")]
    if case == "not a chain":  # input -> a -> c and input -> b -> c: equal latencies
        graph.nodes.update(fb=nir.Linear(np.ones((n, 6))), b=lif(n), wb=nir.Linear(np.eye(n)))
        graph.edges += [("input", "fb"), ("fb", "b"), ("b", "wb"), ("wb", "c")]
    return graph


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("recurrent", "node 'lif' (LIF) is recurrent, and netx's dense_rec carries"),
        ("readout", "node 'li' (LI) is a readout, and netx's neurons spike"),
        ("per-neuron decays", "node 'lif' (LIF) has per-neuron decays; netx holds one iDecay"),
        ("rest", "node 'lif' (LIF) rests at v_leak != v_reset; netx's neurons restart at 0"),
        ("explicit CubaLIF", "node 'cuba' (CubaLIF)'s input lags a step under --scheme explicit"),
        ("not a chain", "node 'b' (LIF) is fed by input, not by the one population before it (a)"),
    ],
)
def test_what_netx_cannot_express_is_a_one_line_refusal(case, message, lava, tmp_path):
    path = tmp_path / "g.nir"
    nir.write(path, refused(case))
    done = to_netx(lava, path, tmp_path / "g.net")
    assert done.returncode == 2
    assert done.stderr.startswith("error: netx cannot express g.nir: ")
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert not (tmp_path / "g.net").exists()


def test_to_netx_outside_the_lava_environment_says_where_it_runs(tmp_path):
    done = subprocess.run(
        [sys.executable, str(TO_NETX), str(tmp_path / "g.nir"), "-o", str(tmp_path / "g.net")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: export/to_netx.py runs with the Lava environment's")
