"""hardware/simulate.py: NIR graphs on Lava agree with NIR's equations; failures are clean."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import nir
import numpy as np
import pytest
from lava_helpers import DT, SIMULATE, chain, lif, processes_with_marker

from ash_neuro.nir_export.contract import EncoderContract
from ash_neuro.nir_export.reference import simulate as reference
from hardware.io import read_outputs, write_inputs
from hardware.supervise import shared_memory_of


def agreement(graph, inputs, out_path, dt=DT):
    """(fraction of equal output entries, spikes of ref, spikes of Lava, per-layer counts)."""
    expected = reference(graph, inputs.astype(np.float32).astype(np.float64), dt)
    result = read_outputs(out_path)
    output, activity, attrs = result.output, result.activity, result.attrs
    ref_out = expected["output"].reshape(output.shape)
    counts = {
        name: (expected[name].sum(axis=1).reshape(counts.shape), counts)
        for name, counts in activity.items()
    }
    return float(np.mean(ref_out == output)), ref_out, output, counts, attrs


def test_lif_chain_floating_pt_matches_forward_euler_exactly(
    lif_graph, currents, run_simulate, tmp_path
):
    path, graph = lif_graph
    done, _ = run_simulate(path, write_inputs(tmp_path / "in.h5", currents))
    assert done.returncode == 0, done.stderr
    share, ref_out, output, counts, attrs = agreement(graph, currents, tmp_path / "out.h5")
    assert ref_out.sum() > 10 and counts["lif1"][0].sum() > 10  # both layers spike
    np.testing.assert_array_equal(output, ref_out)
    for name, (ref_counts, lava_counts) in counts.items():
        np.testing.assert_array_equal(lava_counts, ref_counts, err_msg=name)
    assert output.shape == (6, 30, 4) and output.dtype == np.float32
    assert attrs["mode"] == "floating_pt" and attrs["steps_run"] == 6 * 30 + 2
    assert "lif2: LIF (4,), latency 2 steps" in done.stdout


def test_lif_chain_fixed_pt_agrees_closely(lif_graph, currents, run_simulate, tmp_path):
    path, graph = lif_graph
    done, _ = run_simulate(path, write_inputs(tmp_path / "in.h5", currents), "--mode", "fixed_pt")
    assert done.returncode == 0, done.stderr
    share, ref_out, output, counts, _ = agreement(graph, currents, tmp_path / "out.h5")
    print(f"fixed_pt agreement with forward Euler: {share:.2%} of output entries")
    assert share >= 0.97
    for name, (ref_counts, lava_counts) in counts.items():
        assert abs(lava_counts.sum() - ref_counts.sum()) <= 0.1 * ref_counts.sum(), name
    report = read_outputs(tmp_path / "out.h5").quantisation
    assert "weight_exp" in report.text() and "vth 16384" in report.text()
    assert [layer.node for layer in report.layers] == ["lif1", "lif2"]
    assert "max weight error" in done.stdout
    for printed in (report.parameter_lines(), report.overflow_lines()):  # as stored
        assert "\n".join(printed) in done.stdout


def test_cubalif_with_biases_and_per_neuron_parameters(run_simulate, tmp_path):
    rng = np.random.default_rng(2)
    n = 12
    cuba1 = nir.CubaLIF(
        tau_syn=np.full(n, 0.005),
        tau_mem=np.full(n, 0.01),
        r=rng.uniform(0.5, 1.5, n),
        v_leak=rng.uniform(-0.2, 0.3, n),
        v_threshold=rng.uniform(0.8, 1.2, n),
        v_reset=rng.uniform(-0.3, 0.1, n),
        w_in=rng.uniform(0.5, 2, n),
    )
    ones = np.ones(5)
    cuba2 = nir.CubaLIF(
        tau_syn=0.004 * ones, tau_mem=0.02 * ones, r=ones, v_leak=0 * ones, v_threshold=ones
    )
    graph = chain(
        [6],
        ("fc1", nir.Affine(rng.normal(0.3, 1, (n, 6)), rng.normal(0.3, 0.5, n))),
        ("cuba1", cuba1),
        ("fc2", nir.Linear(rng.normal(1, 3, (5, n)))),
        ("cuba2", cuba2),
        output_shape=[5],
    )
    path = tmp_path / "cuba.nir"
    nir.write(path, graph)
    sidecar = EncoderContract(
        time_steps=25,
        dt=2e-3,
        in_dim=6,
        out_dim=5,
        tokens_per_image=1,
        layer_sizes=(n, 5),
        input_encoding="current",
        input_gain=1.0,
        encoding="uniform test currents",
    )
    path.with_name("cuba.nir.json").write_text(sidecar.to_json())
    inputs = rng.uniform(0, 3, (5, 25, 6))
    done, _ = run_simulate(path, write_inputs(tmp_path / "in.h5", inputs))
    assert done.returncode == 0, done.stderr
    share, ref_out, output, counts, attrs = agreement(graph, inputs, tmp_path / "out.h5", 2e-3)
    assert attrs["dt"] == 2e-3  # from the sidecar
    assert ref_out.sum() > 10
    np.testing.assert_array_equal(output, ref_out)
    for name, (ref_counts, lava_counts) in counts.items():
        np.testing.assert_array_equal(lava_counts, ref_counts, err_msg=name)


def test_every_sample_starts_from_rest_at_v_leak(run_simulate, tmp_path):
    """v_leak 0.5 != v_reset 0, dt / tau = 0.25, input 3 (tests/export/test_reference.py works
    lif1 by hand): from rest lif1 spikes 1 0 1 0 1 0, so lif2 gets 3 0 3 0 3 0 and from rest
    goes 1.25 (spike) -> 0.125 -> 0.96875 -> 0.8515625 -> 1.513671875 (spike) -> 0.125.
    Starting both at v_reset would give lif1 0 1 0 1 0 1 and lif2 0 0 0 1 0 0. Three samples,
    so every window's restart is covered, in both modes."""
    graph = chain(
        [1],
        ("fc1", nir.Affine(np.ones((1, 1)), np.zeros(1))),
        ("lif1", lif(1, tau=4e-3, v_leak=0.5)),
        ("fc2", nir.Affine(np.full((1, 1), 3.0), np.zeros(1))),
        ("lif2", lif(1, tau=4e-3, v_leak=0.5)),
        output_shape=[1],
    )
    path = tmp_path / "rest.nir"
    nir.write(path, graph)
    inputs = np.full((3, 6, 1), 3.0)
    expected = {
        "lif1": np.tile([1.0, 0, 1, 0, 1, 0], (3, 1))[..., None],
        "lif2": np.tile([1.0, 0, 0, 0, 1, 0], (3, 1))[..., None],
    }
    oracle = reference(graph, inputs, DT)
    for name, spikes in expected.items():
        np.testing.assert_array_equal(oracle[name], spikes, err_msg=name)
    for mode in ("floating_pt", "fixed_pt"):
        args = ("--mode", mode, "--record-spikes")
        done, _ = run_simulate(path, write_inputs(tmp_path / "in.h5", inputs), *args)
        assert done.returncode == 0, done.stderr
        result = read_outputs(tmp_path / "out.h5")
        np.testing.assert_array_equal(result.output, expected["lif2"], err_msg=mode)
        for name, spikes in expected.items():
            np.testing.assert_array_equal(result.spikes[name], spikes, err_msg=f"{mode} {name}")


def test_conv_pool_if_graph_on_spike_input(run_simulate, tmp_path):
    rng = np.random.default_rng(3)
    conv = nir.Conv2d(
        input_shape=(6, 6),
        weight=rng.normal(0.4, 0.8, (3, 1, 3, 3)),
        stride=1,
        padding=1,
        dilation=1,
        groups=1,
        bias=rng.normal(0, 0.2, 3),
    )
    graph = chain(
        [1, 6, 6],
        ("conv", conv),
        ("if1", nir.IF(r=np.full((3, 6, 6), 60.0), v_threshold=np.ones((3, 6, 6)))),
        ("pool", nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0]))),
        ("flat", nir.Flatten(input_type={"input": np.array([3, 3, 3])}, start_dim=0)),
        ("lif1", lif(27, tau=0.02, r=8.0)),
        ("fc", nir.Affine(rng.normal(2, 4, (4, 27)), np.zeros(4))),
        ("lif2", lif(4)),
        output_shape=[4],
    )
    path = tmp_path / "conv.nir"
    nir.write(path, graph)
    spikes = (rng.uniform(0, 1, (4, 20, 1, 6, 6)) < 0.3).astype(np.float64)
    for mode in ("floating_pt", "fixed_pt"):
        done, _ = run_simulate(path, write_inputs(tmp_path / "in.h5", spikes), "--mode", mode)
        assert done.returncode == 0, done.stderr
        share, ref_out, output, counts, _ = agreement(graph, spikes, tmp_path / "out.h5")
        assert counts["if1"][1].shape == (4, 3, 6, 6) and ref_out.sum() > 10
        if mode == "floating_pt":
            np.testing.assert_array_equal(output, ref_out)
            for name, (ref_counts, lava_counts) in counts.items():
                np.testing.assert_array_equal(lava_counts, ref_counts, err_msg=name)
        else:
            print(f"fixed_pt agreement on the conv graph: {share:.2%}")
            assert share >= 0.9
            # and the spike counts: at a low rate a share of equal entries alone could hide
            # half the spikes being wrong
            for name, (ref_counts, lava_counts) in counts.items():
                assert ref_counts.sum() > 0, name
                assert abs(lava_counts.sum() - ref_counts.sum()) <= 0.1 * ref_counts.sum(), name
            assert "binary spikes (exact)" in done.stdout


def bad_graph(name: str) -> nir.NIRGraph:
    n = 4
    fc = nir.Affine(np.ones((n, 6)), np.zeros(n))
    cuba = nir.CubaLIF(
        tau_syn=np.full(n, 5e-3),
        tau_mem=np.full(n, 1e-2),
        r=np.ones(n),
        v_leak=np.zeros(n),
        v_threshold=np.ones(n),
    )
    graphs = {
        "unknown node": chain([6], ("late", nir.Delay(np.ones(6))), output_shape=[6]),
        "wrong weight shape": chain([6], ("fc", nir.Affine(np.ones((n, 7)), np.zeros(n))),
                                    ("lif", lif(n)), output_shape=[n]),
        "dt beyond tau": chain([6], ("fc", fc), ("lif", lif(n, tau=1e-4)), output_shape=[n]),
        "output not a neuron": chain([6], ("fc", fc), output_shape=[n]),
        "nan weight": chain([6], ("fc", nir.Affine(np.where(np.eye(n, 6), np.nan, 1.0),
                                                   np.zeros(n))), ("lif", lif(n)),
                            output_shape=[n]),
        "inf bias": chain([6], ("fc", nir.Affine(np.ones((n, 6)), np.full(n, np.inf))),
                          ("lif", lif(n)), output_shape=[n]),
        "cycle of two populations": chain([6], ("fc", fc), ("a", lif(n)),
                                          ("ab", nir.Linear(np.eye(n))), ("b", lif(n)),
                                          output_shape=[n]),
        "algebraic loop": chain([6], ("fc", fc), ("w", nir.Linear(np.eye(n))), ("lif", lif(n)),
                                output_shape=[n]),
        "recurrent explicit CubaLIF": chain([6], ("fc", fc), ("cuba", cuba), output_shape=[n]),
        "readout feeding a layer": chain([6], ("fc", fc), ("li", nir.LI(np.full(n, 1e-2),
                                         np.ones(n), np.zeros(n))), ("w", nir.Linear(np.eye(n))),
                                         ("lif", lif(n)), output_shape=[n]),
    }  # fmt: skip
    extra_edges = {
        "cycle of two populations": [("b", "ba"), ("ba", "a")],
        "algebraic loop": [("w", "w2"), ("w2", "w")],
        "recurrent explicit CubaLIF": [("cuba", "rec"), ("rec", "cuba")],
    }
    graph = graphs[name]
    for src, dst in extra_edges.get(name, []):
        graph.nodes.setdefault(src, nir.Linear(np.eye(n)))
        graph.edges.append((src, dst))
    return graph


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unknown node", "node 'late' is a Delay, which the Lava harness does not support"),
        ("wrong weight shape", "node 'fc' (Affine): weight of shape (4, 7) cannot take"),
        ("dt beyond tau", "node 'lif' (LIF): dt = 0.001 s exceeds tau"),
        ("output not a neuron", "Output 'output' must be fed by one neuron node"),
        ("nan weight", "node 'fc' (Affine) has NaN or infinite weights"),
        ("inf bias", "node 'fc' (Affine) has NaN or infinite weights"),
        ("cycle of two populations", "has a cycle through the neuron nodes a, b; only a"),
        ("algebraic loop", "has a cycle through w, w2 that passes no neuron node"),
        ("recurrent explicit CubaLIF", "node 'cuba' (CubaLIF) is recurrent, and under --scheme"),
        ("readout feeding a layer", "node 'li' (LI) is a readout: its voltage can only be"),
    ],
)
def test_bad_graphs_are_one_line_errors(case, message, run_simulate, tmp_path, currents):
    path = tmp_path / "bad.nir"
    nir.write(path, bad_graph(case))
    done, marker = run_simulate(path, write_inputs(tmp_path / "in.h5", currents))
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr
    assert not processes_with_marker(marker)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("corrupt graph", "is not a readable NIR graph"),
        ("input of the wrong shape", "input has shape (2, 5, 7), expected (samples, T, 6)"),
        ("input without dataset", "has no dataset 'input'"),
        ("missing input", "does not exist"),
        ("sidecar not a contract", "lif.nir.json: invalid encoder contract: "),
        ("sidecar of another graph", "lif.nir.json was written for another graph than"),
        ("metadata dt not a number", "the graph's metadata dt is 'soon', not a number"),
    ],
)
def test_bad_files_are_one_line_errors(case, message, lif_graph, run_simulate, tmp_path):
    graph, _ = lif_graph
    inputs = write_inputs(tmp_path / "in.h5", np.ones((2, 5, 6)))
    if case == "corrupt graph":
        graph = tmp_path / "corrupt.nir"
        graph.write_bytes(b"\x89HDF not really" * 20)
    elif case == "input of the wrong shape":
        write_inputs(inputs, np.ones((2, 5, 7)))
    elif case == "input without dataset":
        inputs = graph  # an HDF5 file without `input`
    elif case == "sidecar not a contract":
        graph.with_name(graph.name + ".json").write_text(json.dumps({"dt": 2e-3}))
    elif case == "sidecar of another graph":  # an export killed between its two renames
        contract = EncoderContract(
            time_steps=5, dt=1e-3, in_dim=6, out_dim=4, tokens_per_image=1,
            layer_sizes=(10, 4), input_encoding="current", input_gain=1.0, encoding="test",
        )  # fmt: skip
        contract = {**contract.to_dict(), "graph_sha256": "0" * 64}
        graph.with_name(graph.name + ".json").write_text(json.dumps(contract))
    elif case == "metadata dt not a number":
        data = nir.read(graph)
        data.metadata["dt"] = "soon"
        graph.unlink()
        nir.write(graph, data)
    else:
        inputs = tmp_path / "absent.h5"
    done, _ = run_simulate(graph, inputs)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr


def run_in_background(lava, path, inputs, out, marker, *args) -> subprocess.Popen:
    command = [str(lava), str(SIMULATE), str(path), "--input", str(inputs), "--out", str(out)]
    env = dict(os.environ, ASH_TEST_MARKER=marker)
    return subprocess.Popen(
        [*command, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def segments_of_running_lava(marker: str) -> set[Path]:
    """Wait until the run's Lava processes are up, then the shared memory and semaphores they
    hold: this run's own segments, whatever other processes on the machine create meanwhile."""
    deadline = time.monotonic() + 30
    while len(processes_with_marker(marker)) < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(processes_with_marker(marker)) >= 5
    time.sleep(0.5)  # the channels between Lava's processes are made as they start
    return shared_memory_of(set(processes_with_marker(marker)))


def test_a_hung_run_is_killed_at_the_timeout_with_all_its_processes(lava, lif_graph, tmp_path):
    path, _ = lif_graph
    long_run = write_inputs(tmp_path / "in.h5", np.ones((1, 500_000, 6)))
    marker = "hung-run-" + str(time.monotonic_ns())
    started = time.monotonic()
    run = run_in_background(lava, path, long_run, tmp_path / "out.h5", marker, "--timeout", "4")
    segments = segments_of_running_lava(marker)
    assert segments  # Lava's processes talk over shared memory: the check below is not vacuous
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 3
    assert "did not finish within --timeout 4 s" in stderr
    assert time.monotonic() - started < 20
    assert not processes_with_marker(marker)
    assert not [segment for segment in segments if segment.exists()]


def test_a_terminated_run_leaves_no_process_behind(lava, lif_graph, tmp_path):
    path, _ = lif_graph
    long_run = write_inputs(tmp_path / "in.h5", np.ones((1, 500_000, 6)))
    marker = "terminated-run-" + str(time.monotonic_ns())
    watchdog = run_in_background(lava, path, long_run, tmp_path / "out.h5", marker)
    segments = segments_of_running_lava(marker)
    assert segments
    watchdog.send_signal(signal.SIGTERM)
    assert watchdog.wait(timeout=20) == 128 + signal.SIGTERM
    assert not processes_with_marker(marker)
    assert not [segment for segment in segments if segment.exists()]


@pytest.mark.parametrize(
    ("source", "expected"), [("metadata", 2e-3), ("--dt", 5e-4), ("default", 1e-3)]
)
def test_dt_from_command_line_else_sidecar_else_metadata(source, expected, run_simulate, tmp_path):
    contract = json.dumps({"dt": 2e-3, "time_steps": 3})
    graph = chain([2], ("lif", lif(2)), output_shape=[2])
    if source != "default":
        graph.metadata = {"ash_neuro_contract": contract}
    path = tmp_path / "tiny.nir"
    nir.write(path, graph)
    args = ("--dt", "5e-4") if source == "--dt" else ()
    done, _ = run_simulate(path, write_inputs(tmp_path / "in.h5", np.ones((1, 3, 2))), *args)
    assert done.returncode == 0, done.stderr
    assert read_outputs(tmp_path / "out.h5").attrs["dt"] == expected


def test_parameter_loihi_cannot_hold_is_a_fixed_pt_error(run_simulate, tmp_path, currents):
    fc = nir.Affine(np.ones((3, 6)), np.zeros(3))
    graph = chain([6], ("fc", fc), ("slow", lif(3, tau=100.0)), output_shape=[3])
    path = tmp_path / "slow.nir"
    nir.write(path, graph)
    inputs = write_inputs(tmp_path / "in.h5", currents)
    assert run_simulate(path, inputs)[0].returncode == 0  # floating_pt holds dt/tau = 1e-5
    done, _ = run_simulate(path, inputs, "--mode", "fixed_pt")
    assert done.returncode == 2
    assert done.stderr == (
        "error: node 'slow' (LIF): decay dt/tau = 1e-05 is below Loihi's 12-bit resolution 1/4096\n"
    )


def test_fixed_pt_lowers_the_threshold_when_known_inputs_would_wrap_the_current(
    run_simulate, tmp_path, currents
):
    # Inputs up to 3 through weights of sd 25: one step drives tens of thresholds, beyond the
    # 8 that a 24-bit current holds at threshold 2**14, where Lava's LIF would wrap u.
    rng = np.random.default_rng(3)
    fc = nir.Affine(rng.normal(0, 25, (5, 6)), np.zeros(5))
    graph = chain([6], ("fc", fc), ("big", lif(5)), output_shape=[5])
    path = tmp_path / "big.nir"
    nir.write(path, graph)
    done, _ = run_simulate(path, write_inputs(tmp_path / "in.h5", currents), "--mode", "fixed_pt")
    assert done.returncode == 0, done.stderr
    assert "node 'big': threshold lowered by 2**" in done.stdout
    assert "node 'big': no current overflow in this run" in done.stdout
    share, ref_out, *_ = agreement(graph, currents, tmp_path / "out.h5")
    assert 0.05 < ref_out.mean() < 0.95 and share >= 0.97


def test_fixed_pt_reports_currents_that_spikes_wrapped(run_simulate, tmp_path):
    # 8 neurons spiking together into weights of 60 thresholds: 480 thresholds in one step,
    # far beyond what the 24-bit current holds at any threshold the weights allow.
    graph = chain(
        [8],
        ("fc1", nir.Affine(np.eye(8) * 3, np.zeros(8))),
        ("lif1", lif(8)),
        ("fc2", nir.Affine(np.full((2, 8), 60.0), np.zeros(2))),
        ("lif2", lif(2)),
        output_shape=[2],
    )
    path = tmp_path / "wrap.nir"
    nir.write(path, graph)
    inputs = write_inputs(tmp_path / "in.h5", np.ones((2, 5, 8)))
    done, _ = run_simulate(path, inputs, "--mode", "fixed_pt")
    assert done.returncode == 0, done.stderr
    assert "node 'lif1': no current overflow in this run" in done.stdout
    assert "warning: node 'lif2': " in done.stdout and "wrapped" in done.stdout
    overflow = read_outputs(tmp_path / "out.h5").quantisation.overflow
    assert overflow["lif1"].wrapped == 0 and overflow["lif1"].peak_share > 0
    # lif1 (v += 0.1 (3 - v)) first crosses 1 at step 4 of 5: one step per sample where all 8
    # spike together, which wraps both lif2 neurons' current in both samples
    assert overflow["lif2"].wrapped == 1 * 2 * 2
    assert overflow["lif2"].neuron_steps == 2 * 5 * 2
    assert overflow["lif2"].peak_share > 1


def test_a_killed_workers_temporary_is_removed_by_the_next_run(
    lif_graph, currents, run_simulate, tmp_path
):
    stale = tmp_path / ".out.h5.0badf00d.tmp"  # what a SIGKILLed writer leaves
    stale.write_bytes(b"half an HDF5 file")
    path, _ = lif_graph
    done, _ = run_simulate(path, write_inputs(tmp_path / "in.h5", currents))
    assert done.returncode == 0, done.stderr
    assert not stale.exists() and (tmp_path / "out.h5").is_file()
    assert not list(tmp_path.glob(".out.h5.*.tmp"))
