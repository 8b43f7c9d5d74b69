"""hardware/simulate.py on more of NIR: per-neuron parameters, both schemes, recurrence, nested
subgraphs and the readouts LI, CubaLI and I, each against the NumPy reference
(ash_neuro/nir_export/reference.py) or a hand-worked number."""

from __future__ import annotations

import nir
import numpy as np
import pytest
from lava_helpers import DT, chain, lif

from ash_neuro.nir_export.reference import simulate as reference
from hardware.io import read_outputs, write_inputs

MODES = ("floating_pt", "fixed_pt")


def run(run_simulate, tmp_path, graph, inputs, *args):
    """simulate.py on `graph` and `inputs` with `args`, spikes recorded: the LavaResult."""
    path = tmp_path / "graph.nir"
    nir.write(path, graph)
    done, _ = run_simulate(path, write_inputs(tmp_path / "in.h5", inputs), "--record-spikes", *args)
    assert done.returncode == 0, done.stderr
    return read_outputs(tmp_path / "out.h5"), done.stdout


def per_neuron_graph(n=12, seed=4) -> nir.NIRGraph:
    """Input(6) -> Affine -> LIF -> Linear -> CubaLIF(5) -> Output, every neuron parameter
    different per neuron: taus, r, v_leak, thresholds, resets, w_in and the affine bias."""
    rng = np.random.default_rng(seed)
    first = nir.LIF(
        tau=rng.uniform(2e-3, 2e-2, n),
        r=rng.uniform(0.5, 1.5, n),
        v_leak=rng.uniform(-0.2, 0.3, n),
        v_threshold=rng.uniform(0.8, 1.2, n),
        v_reset=rng.uniform(-0.3, 0.1, n),
    )
    second = nir.CubaLIF(
        tau_syn=rng.uniform(2e-3, 8e-3, 5),
        tau_mem=rng.uniform(5e-3, 2e-2, 5),
        r=rng.uniform(0.5, 1.5, 5),
        v_leak=np.zeros(5),
        v_threshold=rng.uniform(0.8, 1.2, 5),
        v_reset=np.zeros(5),
        w_in=rng.uniform(0.5, 2, 5),
    )
    return chain(
        [6],
        ("fc1", nir.Affine(rng.normal(0.4, 1, (n, 6)), rng.normal(0.2, 0.3, n))),
        ("lif", first),
        ("fc2", nir.Linear(rng.normal(1.5, 2, (5, n)))),
        ("cuba", second),
        output_shape=[5],
    )


def test_per_neuron_decays_and_parameters(run_simulate, tmp_path):
    """floating_pt: the reference's spikes exactly; fixed_pt: each layer close to the reference
    given its inputs, and the report names the per-neuron decays (12 and 5 distinct) with the
    worst one's rounding."""
    graph = per_neuron_graph()
    inputs = np.random.default_rng(5).uniform(0, 3, (4, 30, 6))
    expected = reference(graph, inputs.astype(np.float32).astype(np.float64), DT)
    assert expected["lif"].mean() > 0.05 and expected["cuba"].mean() > 0.05  # both spike
    result, stdout = run(run_simulate, tmp_path, graph, inputs)
    assert "lif: LIF (12,), latency 1 steps; per-neuron decays" in stdout
    for name in ("lif", "cuba"):
        np.testing.assert_array_equal(result.spikes[name], expected[name], err_msg=name)
    result, stdout = run(run_simulate, tmp_path, graph, inputs, "--mode", "fixed_pt")
    layers = {layer.node: layer for layer in result.quantisation.layers}
    assert layers["lif"].decays == 12 and layers["cuba"].decays == 5
    for layer in layers.values():  # the worst neuron's 12-bit decays, as Lava holds them
        assert layer.dv == round(layer.dv_float * 4096) and layer.dv_loihi == layer.dv / 4096
        assert layer.du + 1 == round(layer.du_float * 4096)
        assert abs(layer.dv_loihi - layer.dv_float) <= 0.5 / 4096
    assert "(worst of 12 per-neuron decays)" in stdout
    # each layer against the reference driven by what Lava fed it: the input, then the
    # spikes of `lif` (a flipped spike in `lif` would otherwise count again in `cuba`)
    second = chain(
        [12], ("fc2", graph.nodes["fc2"]), ("cuba", graph.nodes["cuba"]), output_shape=[5]
    )
    given = {"lif": expected["lif"], "cuba": reference(second, result.spikes["lif"], DT)["cuba"]}
    for name in ("lif", "cuba"):
        share = np.mean(result.spikes[name] == given[name])
        print(f"fixed_pt agreement of {name} with the reference given its inputs: {share:.2%}")
        assert share >= 0.95, name
        assert abs(result.spikes[name].sum() - given[name].sum()) <= 0.1 * given[name].sum()


def recurrent_graph() -> nir.NIRGraph:
    """tests/export/test_reference.py's hand-worked recurrent neuron: dt / tau = 1, recurrent
    weight -2 with bias 0.5, input 1: spikes 1 0 1 0 ..."""
    neuron = nir.LIF(tau=np.full(1, 1e-3), r=np.ones(1), v_leak=np.zeros(1), v_threshold=np.ones(1))
    graph = chain([1], ("fc", nir.Affine(np.ones((1, 1)), np.zeros(1))), ("lif", neuron),
                  output_shape=[1])  # fmt: skip
    graph.nodes["rec"] = nir.Affine(np.full((1, 1), -2.0), np.full(1, 0.5))
    graph.edges += [("lif", "rec"), ("rec", "lif")]
    return graph


@pytest.mark.parametrize("mode", MODES)
def test_recurrent_spikes_arrive_one_step_later_and_not_across_samples(
    mode, run_simulate, tmp_path
):
    """T = 3: each sample spikes 1 0 1, the last step's spike must not reach the next sample's
    first step (it would make it -0.5: silent)."""
    result, stdout = run(
        run_simulate, tmp_path, recurrent_graph(), np.ones((3, 3, 1)), "--mode", mode
    )
    assert "lif: LIF (1,), latency 1 steps; recurrent" in stdout
    np.testing.assert_array_equal(result.output[:, :, 0], [[1, 0, 1]] * 3)


def nested_recurrent_graph(n=12, seed=0) -> nir.NIRGraph:
    """Input -> Affine -> [subgraph: CubaLIF with per-neuron tau_syn and a recurrent Affine]
    -> Linear -> CubaLI readout -> Output (snnTorch's RSynaptic, nested)."""
    rng = np.random.default_rng(seed)
    ones = np.ones(n)
    cell = nir.CubaLIF(
        tau_syn=rng.uniform(2e-3, 1e-2, n), tau_mem=0.01 * ones, r=ones, v_leak=0 * ones,
        v_threshold=ones, v_reset=0 * ones, w_in=ones,
    )  # fmt: skip
    inner = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([n])}),
            "lif": cell,
            "w_rec": nir.Affine(rng.normal(0, 1.5, (n, n)), rng.normal(0, 0.2, n)),
            "output": nir.Output(output_type={"output": np.array([n])}),
        },
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
        type_check=False,
    )
    three = np.ones(3)
    readout = nir.CubaLI(tau_syn=5e-3 * three, tau_mem=1e-2 * three, r=three, v_leak=0 * three,
                         w_in=three)  # fmt: skip
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([6])}),
            "fc": nir.Affine(rng.normal(0.5, 2, (n, 6)), np.zeros(n)),
            "rnn": inner,
            "fc2": nir.Linear(rng.normal(0.5, 2, (3, n))),
            "ro": readout,
            "output": nir.Output(output_type={"output": np.array([3])}),
        },
        # into the subgraph by its name, out of it through its Output (both forms NIR allows)
        edges=[
            ("input", "fc"),
            ("fc", "rnn"),
            ("rnn.output", "fc2"),
            ("fc2", "ro"),
            ("ro", "output"),
        ],
        type_check=False,
    )


def test_nested_recurrent_subgraph_with_a_cubali_readout(run_simulate, tmp_path):
    """floating_pt, semi-implicit: the subgraph's spikes exactly, the readout's voltage to
    float32 (out.h5's precision); fixed_pt: the voltage within 10% of its range (a recurrent
    network amplifies rounding) and the same spike rate within 15%."""
    graph = nested_recurrent_graph()
    inputs = np.random.default_rng(1).uniform(0, 3, (3, 25, 6))
    expected = reference(
        graph, inputs.astype(np.float32).astype(np.float64), DT, scheme="semi-implicit"
    )
    assert 0.05 < expected["rnn.lif"].mean() < 0.95
    span = np.abs(expected["ro"]).max()
    result, stdout = run(run_simulate, tmp_path, graph, inputs, "--scheme", "semi-implicit")
    assert "rnn.lif: CubaLIF (12,), latency 1 steps; recurrent; per-neuron decays" in stdout
    assert (
        result.attrs["output_quantity"] == "voltage" and result.attrs["scheme"] == "semi-implicit"
    )
    assert "ro" not in result.activity and set(result.spikes) == {"rnn.lif"}
    np.testing.assert_array_equal(result.spikes["rnn.lif"], expected["rnn.lif"])
    np.testing.assert_allclose(result.output, expected["ro"], atol=1e-6 * span, rtol=1e-6)
    result, _ = run(
        run_simulate, tmp_path, graph, inputs, "--scheme", "semi-implicit", "--mode", "fixed_pt"
    )
    error = np.abs(result.output - expected["ro"]).max() / span
    rates = result.spikes["rnn.lif"].mean(), expected["rnn.lif"].mean()
    print(f"fixed_pt: readout error {error:.2%} of its range, spike rates {rates}")
    assert error < 0.1 and abs(rates[0] - rates[1]) < 0.15 * rates[1]


@pytest.mark.parametrize("mode", MODES)
def test_li_and_integrator_readouts_give_the_voltage(mode, run_simulate, tmp_path):
    """LI: the hand-worked 1.25 1.8125 2.234375 (dt / tau = 0.25, v_leak 0.5, input 3), in
    fixed_pt within 1% (the input rounds to 8 bits). I fed by a LIF: floating_pt the
    reference's voltage; fixed_pt the sum of dt r W over the LIF spikes Lava produced, within
    the weight error the quantisation report states per delivered spike."""
    li = nir.LI(tau=np.full(1, 4e-3), r=np.ones(1), v_leak=np.full(1, 0.5))
    graph = chain(
        [1], ("fc", nir.Affine(np.ones((1, 1)), np.zeros(1))), ("li", li), output_shape=[1]
    )
    result, _ = run(run_simulate, tmp_path, graph, np.full((2, 3, 1), 3.0), "--mode", mode)
    tolerance = 1e-6 if mode == "floating_pt" else 1e-2
    np.testing.assert_allclose(
        result.output[:, :, 0], [[1.25, 1.8125, 2.234375]] * 2, rtol=tolerance
    )
    rng = np.random.default_rng(2)
    graph = chain(
        [4],
        ("fc", nir.Affine(rng.normal(1, 1, (6, 4)), np.zeros(6))),
        ("lif", lif(6)),
        ("fc2", nir.Linear(rng.normal(0, 1, (2, 6)))),
        ("integrator", nir.I(r=np.full(2, 100.0))),
        output_shape=[2],
    )
    inputs = rng.uniform(0, 3, (3, 20, 4))
    expected = reference(graph, inputs.astype(np.float32).astype(np.float64), DT)
    assert expected["lif"].mean() > 0.05
    result, _ = run(run_simulate, tmp_path, graph, inputs, "--mode", mode)
    span = np.abs(expected["integrator"]).max()
    if mode == "floating_pt":
        np.testing.assert_allclose(result.output, expected["integrator"], atol=1e-6 * span)
        return
    weight = DT * 100.0 * graph.nodes["fc2"].weight  # what one spike adds to v
    spikes = result.spikes["lif"]
    given_spikes = np.cumsum(spikes @ weight.T, axis=1)
    (connection,) = {layer.node: layer for layer in result.quantisation.layers}[
        "integrator"
    ].weights
    per_spike = connection.max_error_share * np.abs(weight).max()
    bound = per_spike * np.cumsum(spikes.sum(axis=2), axis=1)[..., None]
    assert connection.max_error_share > 0 and spikes.sum() > 10
    assert np.all(np.abs(result.output - given_spikes) <= bound + 1e-6)


@pytest.mark.parametrize("scheme", ["explicit", "semi-implicit"])
def test_the_scheme_decides_when_a_cubalif_current_counts(scheme, run_simulate, tmp_path):
    """tests/export/test_reference.py's CubaLIF (v_leak 0.75, dt / tau 0.5, input 1.5):
    semi-implicit 1 0, explicit 0 1, over two samples, in both modes."""
    one = np.ones(1)
    cell = nir.CubaLIF(tau_syn=2e-3 * one, tau_mem=2e-3 * one, r=one, v_leak=0.75 * one,
                       v_threshold=one, w_in=one)  # fmt: skip
    graph = chain(
        [1], ("fc", nir.Affine(np.ones((1, 1)), np.zeros(1))), ("cuba", cell), output_shape=[1]
    )
    expected = {"explicit": [0, 1], "semi-implicit": [1, 0]}[scheme]
    for mode in MODES:
        result, _ = run(
            run_simulate,
            tmp_path,
            graph,
            np.full((2, 2, 1), 1.5),
            "--scheme",
            scheme,
            "--mode",
            mode,
        )
        np.testing.assert_array_equal(result.output[:, :, 0], [expected] * 2, err_msg=mode)
        assert result.attrs["scheme"] == scheme
