"""`python -m ash_neuro.deploy`: a tiny checkpoint's encoder on Lava against Norse, the report,
and one-line errors (missing graph, a graph of another checkpoint, no Lava environment)."""

from __future__ import annotations

import json

import pytest
import torch

from ash_neuro.config import override_config
from ash_neuro.data.sources import configured_source
from ash_neuro.data.tokenizer import load_tokenizer, tokenizer_path_for
from ash_neuro.deploy.__main__ import main
from ash_neuro.deploy.report import FILES
from ash_neuro.deploy.run import deploy
from ash_neuro.evaluate import evaluate_checkpoint
from ash_neuro.models.factory import build_model, build_task_model
from ash_neuro.nir_export.from_checkpoint import export_checkpoint
from ash_neuro.registry import TASKS
from tests.conftest import save_model_checkpoint


def make_run(folder, cfg, seed=0, task=None):
    """An (untrained, weights from `seed`) checkpoint of `cfg` (with the head of `task`, as
    `ash_neuro.finetune` writes it) and its exported encoder.nir in `folder`."""
    tokenizer = load_tokenizer(tokenizer_path_for(cfg.world.path))
    torch.manual_seed(seed)
    if task is None:
        model = build_model(cfg, len(tokenizer), tokenizer.pad_token_id)
        set_concept_words(model, tokenizer)
        ckpt = save_model_checkpoint(folder / "ckpt.pt", cfg, model, tokenizer)
    else:
        cfg = override_config(cfg, [f"finetune.task={task}"])
        handler = TASKS.get(task)(cfg)
        answers = handler.answers(handler.dataset(configured_source(cfg, "train"), "train"))
        model = build_task_model(cfg, len(tokenizer), tokenizer.pad_token_id, answers)
        set_concept_words(model.backbone, tokenizer)
        ckpt = save_model_checkpoint(
            folder / "ckpt.pt", cfg, model, tokenizer, task=task, answers=answers
        )
    export_checkpoint(ckpt, folder / "encoder.nir", samples=2)
    return ckpt, folder / "encoder.nir"


def deploy_equal_to_norse_and_evaluate(ckpt, graph, task):
    """Deploy 6 test examples of `task` in floating_pt and check what every method's deployment
    must give: spiking layers not silent, 100% spike agreement in every layer, Lava's metrics
    equal to Norse's and Norse's to the plain PyTorch evaluation of the same examples."""
    record = deploy(ckpt, graph, task, limit=6, modes=("floating_pt",), device="cpu")[0]
    assert sum(record.norse.firing_rates.values()) > 0  # not a vacuous comparison
    floating = record.modes["floating_pt"]
    assert dict(floating.agreement.layers) == {"lif1": 1.0, "lif2": 1.0}
    assert floating.agreement.overall == 1.0
    assert floating.metrics == record.norse.metrics
    plain = evaluate_checkpoint(ckpt, task, split="test", limit=6, overrides=["train.device=cpu"])
    assert record.n_examples == plain["n_examples"] > 0
    for key, value in plain["metrics"].items():
        assert record.norse.metrics[key] == pytest.approx(value, abs=1e-6)
    return record


def set_concept_words(backbone, tokenizer) -> None:
    """What pre-training does for a network with visual concepts (configs/vicha.yaml)."""
    if backbone.concepts is not None:
        backbone.concepts.set_words(tokenizer)


@pytest.fixture
def tiny_run(tiny_config, tmp_path):
    return make_run(tmp_path, tiny_config)


def fails_with(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_deploy_reports_lava_beside_norse(lava, tiny_run, tmp_path, capsys):
    ckpt, graph = tiny_run
    report = tmp_path / "report"
    record = main(
        [str(ckpt), str(graph), "--limit", "3", "--device", "cpu"] + ["--report", str(report)]
    )
    assert sorted(record.modes) == ["fixed_pt", "floating_pt"]
    floating = record.modes["floating_pt"]
    assert sum(record.norse.firing_rates.values()) > 0  # not a vacuous comparison
    assert floating.agreement.to_dict() == {"lif1": 1.0, "lif2": 1.0, "all": 1.0}
    assert floating.metrics == record.norse.metrics
    assert floating.pipeline_latency_steps == {"lif1": 1, "lif2": 2}
    assert list(record.norse.neuron_shares) == ["lif1", "lif2"]
    assert floating.neuron_shares == record.norse.neuron_shares  # identical spikes
    assert floating.quantisation is None
    for result in record.modes.values():
        assert set(result.agreement.layers) == {"lif1", "lif2"}
        energy = result.energy
        assert energy.snn_uj_per_image > 0 and energy.ann_uj_per_image > 0
        assert "not measured" in energy.estimate
        assert energy.chip.name == "loihi2" and "Loihi" in energy.chip.per_operation_basis
        # token-parallel (default): one copy of lif1 + lif2 per token row, all at once
        fit, rows = energy.chip_fit, record.rows_per_image
        widths = list(record.layer_sizes.values())
        assert fit.neurons == rows * sum(widths) and fit.fits_one_chip
        assert energy.layout == "token_parallel" and energy.mapping.copies == rows
        assert energy.steps_per_image == record.time_steps  # not rows x T
        assert energy.latency_steps_per_image <= record.time_steps + len(widths)
        assert (
            0
            < sum(e.active_updates for e in energy.layers)
            <= sum(e.neuron_updates for e in energy.layers)
        )
        assert "not chip time" in result.simulator.label
    quantisation = record.modes["fixed_pt"].quantisation
    assert "no current overflow" in quantisation.text()
    assert list(quantisation.overflow) == ["lif1", "lif2"]  # the deployment's layer names
    # every file of the report exists and parses; report.json is the record, key for key
    written = json.loads((report / "report.json").read_text())
    assert written == record.to_dict()
    assert written["modes"]["fixed_pt"]["quantisation"] == quantisation.text()
    markdown = (report / "report.md").read_text()
    assert "| **r_mean** |" in markdown and "estimates, not measurements" in markdown
    assert "Per-operation basis of loihi2" in markdown and "of one loihi2 chip" in markdown
    for name in FILES:
        assert (report / name).stat().st_size > 0
        if name.endswith(".png"):
            assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "written:" in capsys.readouterr().out


def test_deploy_with_the_first_layer_on_the_host(lava, tiny_config, tmp_path):
    """A graph exported with --first-layer host: the host computes the first Affine, Lava runs
    the rest token-parallel; spikes equal Norse's, and the energy charges the host's MACs to
    the host (INT8 on the Loihi-class figure) and one-to-one events to the chip."""
    ckpt, _ = make_run(tmp_path, tiny_config)
    graph = tmp_path / "host.nir"
    export_checkpoint(ckpt, graph, samples=2, first_layer="host")
    record, _ = deploy(ckpt, graph, limit=2, modes=("floating_pt",), device="cpu")
    floating = record.modes["floating_pt"]
    assert min(record.norse.firing_rates.values()) > 0  # not a vacuous comparison
    assert floating.agreement.overall == 1.0 and floating.metrics == record.norse.metrics
    energy, rows = floating.energy, record.rows_per_image
    widths = list(record.layer_sizes.values())
    in_dim = tiny_config.model.visual.dim
    assert energy.host.macs == rows * in_dim * widths[0]  # once per token row
    first = energy.layers[0]
    assert first.synaptic_ops == first.messages  # one synapse per event, one-to-one
    assert first.ann_macs == rows * in_dim * widths[0]  # the ANN-equivalent is unchanged
    assert energy.host_uj_per_image == pytest.approx(energy.host.macs * 0.23e-6)


def make_vqa_run(folder, cfg, seed=0):
    """An (untrained) checkpoint fine-tuned for VQA, as `ash_neuro.finetune` writes it, and the
    export of its encoder."""
    cfg = override_config(cfg, ["finetune.task=vqa"])
    tokenizer = load_tokenizer(tokenizer_path_for(cfg.world.path))
    vqa = TASKS.get("vqa")(cfg)
    train = vqa.dataset(configured_source(cfg, "train"), "train")
    answers = vqa.answers(train)
    torch.manual_seed(seed)
    model = build_task_model(cfg, len(tokenizer), tokenizer.pad_token_id, answers)
    counts = torch.bincount(torch.tensor([r.answer for r in train.records]), minlength=len(answers))
    with torch.no_grad():  # the training prior as the bias: an accuracy above 0 to compare
        model.head.net[-1].bias.copy_(counts.add(1).float().log())
    ckpt = save_model_checkpoint(folder / "ckpt.pt", cfg, model, tokenizer, "vqa", answers)
    export_checkpoint(ckpt, folder / "encoder.nir", samples=2)
    return ckpt, folder / "encoder.nir"


def test_deploy_vqa_of_a_fine_tuned_checkpoint(lava, tiny_config, tmp_path):
    ckpt, graph = make_vqa_run(tmp_path, tiny_config)
    argv = [str(ckpt), str(graph), "--task", "vqa", "--limit", "3", "--mode", "floating_pt"]
    record = main(argv + ["--device", "cpu", "--report", str(tmp_path / "report")])
    assert record.main_metric == "vqa_acc" and record.n_examples > 0
    assert sum(record.norse.firing_rates.values()) > 0
    floating = record.modes["floating_pt"]
    assert floating.agreement.overall == 1.0
    assert set(floating.metrics) == {"vqa_acc", "exact_acc"}
    norse = record.norse.metrics
    assert norse["vqa_acc"] > 0  # not a vacuous comparison
    assert floating.metrics == norse
    # the same questions through the plain PyTorch forward (the evaluate command)
    plain = evaluate_checkpoint(ckpt, split="test", limit=3, overrides=["train.device=cpu"])
    assert plain["n_examples"] == record.n_examples
    for key, value in norse.items():
        assert plain["metrics"][key] == pytest.approx(value, abs=1e-6)


@pytest.mark.parametrize("task", ["retrieval", "nlvr", "ve", "grounding"])
def test_every_task_deploys_with_lava_equal_to_norse_and_to_evaluate(
    lava, tiny_config, tmp_path, task
):
    """Each task's head reads the spikes from Lava through the task's encode hook; with 100%
    spike agreement its metrics equal Norse's, and Norse's equal the plain PyTorch evaluation
    (`python -m ash_neuro.evaluate`, the backbone's own encode_image) of the same examples."""
    ckpt, graph = make_run(tmp_path, tiny_config, task=None if task == "retrieval" else task)
    record = deploy_equal_to_norse_and_evaluate(ckpt, graph, task)
    assert record.main_metric == TASKS.get(task).main_metric


def test_fixed_pt_runs_every_chunk_on_the_same_integers(lava, tiny_run):
    # quantised per chunk, each chunk would get its own input scale; calibrated on the whole
    # run, one image per Lava build gives the same spikes as all three in one build
    ckpt, graph = tiny_run
    runs = [
        deploy(ckpt, graph, limit=3, modes=("fixed_pt",), device="cpu", chunk=chunk)[0]
        for chunk in (1, 3)
    ]
    chunked, whole = (run.modes["fixed_pt"] for run in runs)
    assert chunked.agreement == whole.agreement and chunked.metrics == whole.metrics
    rows = 3 * runs[0].rows_per_image
    for result in (chunked, whole):
        assert f"quantise: calibrated on {rows} samples" in result.quantisation.text()
        assert result.quantisation.calibration_samples == rows
        assert result.quantisation.text().count("no current overflow") == 2  # once per layer
    assert chunked.quantisation.text() == whole.quantisation.text()
    # three one-image chunks add up to the neuron-steps of the whole run
    assert chunked.quantisation.overflow == whole.quantisation.overflow


def test_unknown_energy_profile_is_one_line(tiny_run, capsys):
    line = fails_with(capsys, [str(p) for p in tiny_run] + ["--chip", "loihi3"])
    assert "no hardware profile 'loihi3': use one of ann_45nm, ann_45nm_int8, loihi, loihi2" in line


def test_vqa_needs_a_vqa_checkpoint(tiny_run, capsys):
    line = fails_with(capsys, [str(p) for p in tiny_run] + ["--task", "vqa"])
    assert "has no vqa head" in line


def test_missing_graph_is_one_line(tiny_run, tmp_path, capsys):
    ckpt, _ = tiny_run
    line = fails_with(capsys, [str(ckpt), str(tmp_path / "absent.nir")])
    assert "absent.nir not found" in line and "export/to_nir.py" in line


def test_graph_of_another_checkpoint_is_refused(tiny_run, tiny_config, tmp_path, capsys):
    ckpt, _ = tiny_run
    other = tmp_path / "other"
    cfg = override_config(tiny_config, ["model.spiking.time_steps=4"])
    _, graph = make_run(other, cfg)
    line = fails_with(capsys, [str(ckpt), str(graph)])
    assert "was not exported from this checkpoint" in line and "time_steps 4 vs 3" in line


def test_graph_with_other_weights_is_refused(tiny_run, tiny_config, tmp_path, capsys):
    _, graph = tiny_run
    other, _ = make_run(tmp_path / "other", tiny_config, seed=1)  # same shapes, other weights
    line = fails_with(capsys, [str(other), str(graph)])
    assert "was not exported from this checkpoint: no graph weight matches" in line


def test_missing_lava_environment_is_one_line(tiny_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ASH_LAVA_PYTHON", str(tmp_path / "no-python"))
    line = fails_with(capsys, [str(p) for p in tiny_run])
    assert "make lava-env" in line


@pytest.mark.parametrize("chunk", ["0", "-1"])
def test_a_chunk_below_one_image_is_one_line(tiny_run, capsys, chunk):
    line = fails_with(capsys, [str(p) for p in tiny_run] + ["--chunk", chunk])
    assert f"--chunk must be at least 1 image per Lava build, got {chunk}" in line


def test_a_damaged_graph_beside_its_sidecar_is_one_line(tiny_run, capsys):
    ckpt, graph = tiny_run
    data = bytearray(graph.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\x00" * 64  # the sidecar is intact
    graph.write_bytes(bytes(data))
    line = fails_with(capsys, [str(ckpt), str(graph)])
    assert "encoder.nir.json was written for another graph than" in line
    graph.with_name("encoder.nir.json").unlink()  # no sidecar: the graph itself is read
    line = fails_with(capsys, [str(ckpt), str(graph)])
    assert "encoder.nir is not a readable NIR graph" in line


def test_an_interrupted_report_leaves_no_report_json(lava, tiny_run, tmp_path, monkeypatch):
    """report.json (what `make demo` reuses) is written last: an interrupt while plotting
    leaves the folder without one, never a stale or partial record."""
    from ash_neuro.deploy import report

    ckpt, graph = tiny_run
    folder = tmp_path / "report"
    record, rasters = deploy(ckpt, graph, limit=1, modes=("floating_pt",), device="cpu")
    report.write_report(record, rasters, folder)
    assert (folder / "report.json").is_file()

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "plot_energy", interrupted)
    with pytest.raises(KeyboardInterrupt):
        report.write_report(record, rasters, folder)
    assert not (folder / "report.json").exists()


def test_energy_per_image_by_hand(lava, tiny_run):
    """The energy record against the published per-operation figures applied by hand to the
    run's own counts (the loihi2 profile's Loihi figures, ann_45nm's MAC)."""
    ckpt, graph = tiny_run
    record = deploy(ckpt, graph, limit=2, modes=("floating_pt",), device="cpu")[0]
    energy = record.modes["floating_pt"].energy
    widths = list(record.layer_sizes.values())  # lif1, lif2
    rows, steps = record.rows_per_image, record.time_steps
    in_dim = 32  # the tiny visual width: the encoder's input
    rates = record.modes["floating_pt"].firing_rates
    spikes = [rates[name] * rows * steps * width for name, width in record.layer_sizes.items()]
    inputs = [rows * steps * in_dim, spikes[0]]  # graded currents (all non-zero), then spikes
    synaptic = sum(e * w * 23.6 for e, w in zip(inputs, widths))
    neurons = sum(w * rows * steps * 81.0 for w in widths)
    messages = sum(e * (1.7 + 3.5) for e in inputs)
    assert energy.snn_uj_per_image == pytest.approx((synaptic + neurons + messages) * 1e-6)
    macs = (in_dim * widths[0] + widths[0] * widths[1]) * rows
    assert energy.ann_uj_per_image == pytest.approx(macs * 4.6 * 1e-6)
    assert spikes[0] > 0 and spikes[1] > 0


def test_a_trained_encoder_runs_in_fixed_pt_close_to_norse(lava, tiny_config, tmp_path):
    """The real encoder after training (not an initialisation) on Loihi's integers: per layer
    at least 97% of the spike entries equal Norse's and the spike counts within 5%."""
    import dataclasses

    from ash_neuro.train import train

    cfg = dataclasses.replace(
        tiny_config, train=dataclasses.replace(tiny_config.train, max_steps=8)
    )
    train(cfg, tmp_path)
    export_checkpoint(tmp_path / "ckpt.pt", tmp_path / "encoder.nir", samples=2)
    record = deploy(
        tmp_path / "ckpt.pt", tmp_path / "encoder.nir", limit=4, modes=("fixed_pt",), device="cpu"
    )[0]
    fixed = record.modes["fixed_pt"]
    for name, share in fixed.agreement.layers.items():
        norse_rate, lava_rate = record.norse.firing_rates[name], fixed.firing_rates[name]
        assert norse_rate > 0.01, name
        assert share >= 0.97, (name, share)
        assert abs(lava_rate - norse_rate) <= 0.05 * norse_rate, (name, lava_rate, norse_rate)
