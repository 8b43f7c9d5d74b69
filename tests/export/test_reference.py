"""ash_neuro/nir_export/reference.py: NIR's equations in NumPy, against hand-worked numbers and
PyTorch's convolutions: every neuron kind, both schemes, recurrence and nested graphs."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from ash_neuro.nir_export.contract import NIRExportError
from ash_neuro.nir_export.reference import simulate

DT = 1e-3


def chain(input_shape, *nodes: tuple[str, nir.NIRNode]) -> nir.NIRGraph:
    """input -> nodes... -> output, by name."""
    names = ["input", *(name for name, _ in nodes), "output"]
    graph_nodes = {"input": nir.Input(input_type={"input": np.array(input_shape)})}
    graph_nodes.update(dict(nodes))
    graph_nodes["output"] = nir.Output(output_type={"output": np.array([1])})
    return nir.NIRGraph(graph_nodes, list(zip(names[:-1], names[1:])), type_check=False)


def one(value: float) -> np.ndarray:
    return np.array([value])


def rest_graph() -> nir.NIRGraph:
    """One LIF neuron whose rest (v_leak 0.5) is not its reset (0): dt / tau = 0.25, r = 1."""
    neuron = nir.LIF(
        tau=one(4e-3), r=one(1.0), v_leak=one(0.5), v_threshold=one(1.0), v_reset=one(0.0)
    )
    return chain([1], ("lif", neuron))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lif_starts_at_v_leak_not_v_reset(dtype):
    """Input 3 every step, v += 0.25 * ((0.5 - v) + 3) (all values exact in binary):
    from v_leak:  0.5 -> 1.25 spike, 0 -> 0.875 -> 1.53125 spike, 0 -> ...: spikes 1 0 1 0 1 0
    from v_reset: 0 -> 0.875 -> 1.53125 spike, 0 -> ...:                    spikes 0 1 0 1 0 1
    """
    spikes = simulate(rest_graph(), np.full((2, 6, 1), 3.0), DT, dtype=dtype)
    expected = np.array([1, 0, 1, 0, 1, 0], dtype=dtype)
    for name in ("lif", "output"):
        assert spikes[name].shape == (2, 6, 1) and spikes[name].dtype == dtype
        np.testing.assert_array_equal(spikes[name][:, :, 0], [expected, expected])


def test_if_has_no_leak_and_starts_at_v_reset():
    """v += dt * r * I = 0.75 per step from v_reset 0.5: 1.25 spike, 0.5 -> 1.25 spike, ...;
    from 0 the first step (0.75) would stay silent."""
    neuron = nir.IF(r=one(250.0), v_threshold=one(1.0), v_reset=one(0.5))
    spikes = simulate(chain([1], ("if", neuron)), np.full((1, 4, 1), 3.0), DT)
    np.testing.assert_array_equal(spikes["if"][0, :, 0], [1, 1, 1, 1])


def test_cubalif_starts_at_v_leak_with_no_current():
    """dt / tau_syn = dt / tau_mem = 0.5, input 1.5, explicit Euler (both from the old state):
    from rest:    v 0.75 -> 0.75, i 0 -> 0.75;  v -> 0.75 + 0.5 * 0.75 = 1.125: spike at step 1
    from v_reset: v 0 -> 0.375;                 v -> 0.375 + 0.5 * (0.375 + 0.75) = 0.9375: none
    """
    ones = one(1.0)
    neuron = nir.CubaLIF(
        tau_syn=one(2e-3),
        tau_mem=one(2e-3),
        r=ones,
        v_leak=one(0.75),
        v_threshold=ones,
        v_reset=one(0.0),
        w_in=ones,
    )
    spikes = simulate(chain([1], ("cuba", neuron)), np.full((1, 2, 1), 1.5), DT)
    np.testing.assert_array_equal(spikes["cuba"][0, :, 0], [0, 1])


def linear_cases():
    rng = np.random.default_rng(0)
    weight, bias = rng.normal(size=(4, 1, 3, 3)), rng.normal(size=4)
    conv = nir.Conv2d(
        input_shape=(7, 7),
        weight=weight,
        stride=2,
        padding=1,
        dilation=2,
        groups=2,
        bias=bias,
    )
    conv_torch = dict(weight=weight, bias=bias, stride=2, padding=1, dilation=2, groups=2)
    pool = (np.array([2, 2]), np.array([2, 2]), np.array([1, 1]))
    return [
        ("conv", conv, lambda x: torch.nn.functional.conv2d(x, **_tensors(conv_torch))),
        ("sum", nir.SumPool2d(*pool), lambda x: 4 * torch.nn.functional.avg_pool2d(x, 2, 2, 1)),
        ("avg", nir.AvgPool2d(*pool), lambda x: torch.nn.functional.avg_pool2d(x, 2, 2, 1)),
    ]


def _tensors(kwargs: dict) -> dict:
    return {k: torch.as_tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}


@pytest.mark.parametrize(("name", "node", "torch_op"), linear_cases(), ids=lambda c: str(c))
def test_convolution_and_pooling_are_pytorchs(name, node, torch_op):
    x = np.random.default_rng(1).normal(size=(3, 2, 2, 7, 7))  # samples, T, C, H, W
    out = simulate(chain([2, 7, 7], (name, node)), x, DT)["output"]
    expected = torch_op(torch.as_tensor(x.reshape(6, 2, 7, 7))).numpy()
    np.testing.assert_allclose(out.reshape(expected.shape), expected, rtol=1e-12, atol=1e-12)


def test_scale_flatten_affine_chain():
    rng = np.random.default_rng(2)
    scale, weight, bias = rng.normal(size=(2, 3)), rng.normal(size=(1, 6)), rng.normal(size=1)
    graph = chain(
        [2, 3],
        ("scale", nir.Scale(scale)),
        ("flat", nir.Flatten(input_type={"input": np.array([2, 3])}, start_dim=0)),
        ("fc", nir.Affine(weight, bias)),
    )
    x = rng.normal(size=(4, 5, 2, 3))
    out = simulate(graph, x, DT)["output"]
    np.testing.assert_allclose(out, (x * scale).reshape(4, 5, 6) @ weight.T + bias, rtol=1e-12)


def test_a_node_it_cannot_run_is_named():
    delay = nir.Delay(delay=one(2.0))
    with pytest.raises(NIRExportError, match="node 'late' is a Delay, which the NumPy reference"):
        simulate(chain([1], ("late", delay)), np.ones((1, 2, 1)), DT)


def cuba(**kw):
    """One CubaLIF (CubaLI without v_threshold/v_reset) neuron; dt / tau = 0.5 by default."""
    params = dict(tau_syn=one(2e-3), tau_mem=one(2e-3), r=one(1.0), v_leak=one(0.0), w_in=one(1.0))
    params.update({k: one(v) for k, v in kw.items()})
    return params


def test_semi_implicit_cubalif_takes_this_steps_current():
    """As test_cubalif_starts_at_v_leak_with_no_current (v_leak 0.75, input 1.5), but the
    voltage steps from the new current: i 0 -> 0.75, v -> 0.75 + 0.5 * 0.75 = 1.125: spike at
    step 0, v = 0; then i -> 0.75 + 0.5 * (1.5 - 0.75) = 1.125, v -> 0.5 * (0.75 + 1.125) =
    0.9375: none. Explicit Euler gives 0 1."""
    neuron = nir.CubaLIF(**cuba(v_leak=0.75, v_threshold=1.0, v_reset=0.0))
    graph = chain([1], ("cuba", neuron))
    runs = {
        scheme: simulate(graph, np.full((1, 2, 1), 1.5), DT, scheme=scheme)["cuba"][0, :, 0]
        for scheme in ("semi-implicit", "explicit")
    }
    np.testing.assert_array_equal(runs["semi-implicit"], [1, 0])
    np.testing.assert_array_equal(runs["explicit"], [0, 1])


def test_readouts_return_their_voltage():
    """LI (dt / tau = 0.25, v_leak 0.5, input 3): 0.5 -> 1.25 -> 1.8125 -> 2.234375, never
    reset; I (dt * r = 0.25) on inputs 1, 2, -4: 0.25, 0.75, -0.25; CubaLI (dt / tau = 0.5,
    input 2): semi-implicit i 1, 1.5, 1.75 and v 0.5, 1.0, 1.375; explicit v 0, 0.5, 1.0."""
    li = nir.LI(tau=one(4e-3), r=one(1.0), v_leak=one(0.5))
    out = simulate(chain([1], ("li", li)), np.full((1, 3, 1), 3.0), DT)
    np.testing.assert_array_equal(out["li"][0, :, 0], [1.25, 1.8125, 2.234375])
    np.testing.assert_array_equal(out["output"], out["li"])
    integrator = nir.I(r=one(250.0))
    out = simulate(chain([1], ("i", integrator)), np.array([[[1.0], [2.0], [-4.0]]]), DT)
    np.testing.assert_array_equal(out["i"][0, :, 0], [0.25, 0.75, -0.25])
    graph = chain([1], ("cuba_li", nir.CubaLI(**cuba())))
    for scheme, expected in (("semi-implicit", [0.5, 1.0, 1.375]), ("explicit", [0, 0.5, 1.0])):
        out = simulate(graph, np.full((1, 3, 1), 2.0), DT, scheme=scheme)
        np.testing.assert_array_equal(out["cuba_li"][0, :, 0], expected, err_msg=scheme)


def recurrent_graph() -> nir.NIRGraph:
    """Input -> fc -> lif -> output, and lif -> rec -> lif: one LIF neuron with dt / tau = 1
    (v = r I each step), threshold 1, whose recurrent Affine has weight -2 and bias 0.5."""
    neuron = nir.LIF(tau=one(1e-3), r=one(1.0), v_leak=one(0.0), v_threshold=one(1.0))
    graph = chain([1], ("fc", nir.Affine(np.ones((1, 1)), one(0.0))), ("lif", neuron))
    graph.nodes["rec"] = nir.Affine(np.full((1, 1), -2.0), one(0.5))
    graph.edges += [("lif", "rec"), ("rec", "lif")]
    return graph


def test_recurrent_input_arrives_one_step_later_with_its_bias_from_step_zero():
    """Input 1: step 0 v = 1 + 0.5 (the recurrent bias, no spikes yet) = 1.5: spike; step 1
    v = 1 - 2 + 0.5 = -0.5: none; step 2 as step 0: 1 0 1 0. With the delay on the other edge
    of the cycle (rec -> lif) the bias would miss step 0: 0 1 0 1."""
    out = simulate(recurrent_graph(), np.ones((2, 4, 1)), DT)
    np.testing.assert_array_equal(out["lif"][:, :, 0], [[1, 0, 1, 0]] * 2)


def test_a_nested_graph_runs_as_its_flat_equal():
    """The recurrent layer as a subgraph reached by name (its Input/Output as ports), and as
    one reached through `sub.input` / `sub.output` edges: both give the flat graph's spikes
    under the subgraph's names."""
    flat = recurrent_graph()
    inner = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([1])}),
            "lif": flat.nodes["lif"],
            "rec": flat.nodes["rec"],
            "output": nir.Output(output_type={"output": np.array([1])}),
        },
        edges=[("input", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")],
        type_check=False,
    )
    outer = {k: v for k, v in flat.nodes.items() if k in ("input", "fc", "output")}
    x = np.random.default_rng(0).uniform(0, 2, (3, 8, 1))
    expected = simulate(flat, x, DT)["lif"]
    assert 0 < expected.mean() < 1
    for ends in (("sub", "sub"), ("sub.input", "sub.output")):
        graph = nir.NIRGraph(
            nodes={**outer, "sub": inner},
            edges=[("input", "fc"), ("fc", ends[0]), (ends[1], "output")],
            type_check=False,
        )
        out = simulate(graph, x, DT)
        np.testing.assert_array_equal(out["sub.lif"], expected)
        np.testing.assert_array_equal(out["output"], expected)


def test_a_cycle_without_a_neuron_is_named():
    graph = chain([1], ("a", nir.Linear(np.ones((1, 1)))), ("b", nir.Linear(np.ones((1, 1)))))
    graph.edges.append(("b", "a"))
    with pytest.raises(NIRExportError, match="cycle through a, b that passes no neuron node"):
        simulate(graph, np.ones((1, 2, 1)), DT)
