"""`python export/to_nir.py`: a checkpoint's spiking encoder to NIR, and one-line errors."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from ash_neuro.checkpoint import load_checkpoint, save_checkpoint
from ash_neuro.config import load_config
from ash_neuro.models.factory import build_model, build_task_model
from ash_neuro.nir_export.contract import ENCODINGS, read_contract, sidecar_path
from ash_neuro.registry import SPIKE_CODINGS
from tests.conftest import save_model_checkpoint, small_tokenizer

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "export" / "to_nir.py"
# The encoder's real structure at a size that builds in well under a second.
TINY = [
    "world.image_size=16",
    "model.embed_dim=8",
    "model.visual.patch_size=8",
    "model.visual.dim=16",
    "model.visual.depth=1",
    "model.visual.heads=2",
    "model.spiking.hidden_dims=[24]",
    "model.spiking.out_dim=12",
    "model.spiking.time_steps=5",
    "model.text.dim=16",
    "model.text.depth=1",
    "model.text.heads=2",
    "model.fusion.depth=1",
    "model.fusion.heads=2",
]


def make_checkpoint(path: Path, *overrides: str) -> Path:
    cfg = load_config(ROOT / "configs" / "default.yaml", [*TINY, *overrides])
    torch.manual_seed(0)
    tokenizer = small_tokenizer()
    model = build_model(cfg, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    return save_model_checkpoint(path, cfg, model, tokenizer)


def load_cli():
    spec = importlib.util.spec_from_file_location("to_nir_cli", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT
    )


def test_cli_exports_and_verifies_a_checkpoint(tmp_path):
    ckpt = make_checkpoint(tmp_path / "run" / "ckpt.pt", "model.spiking.encoding=poisson")
    result = run_cli(str(ckpt))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert "nodes: Input, Affine x2, LIF x2, Output" in out
    assert "norse.from_nir of the written file vs the encoder: 100.00% of output spikes" in out
    assert "NIR's equations (NumPy, forward Euler) vs the encoder: 100.00%" in out
    assert "through the checkpoint's visual encoder and its 'poisson' input encoding" in out
    assert "export time:" in out
    rate = float(out.split("output spike rate: ")[1].split()[0])
    assert rate > 0.01  # the 100% agreements above are not between two silent networks
    path = ckpt.parent / "encoder.nir"  # the default output lies beside the checkpoint
    contract = read_contract(path)
    assert (contract.time_steps, contract.dt, contract.input_encoding) == (5, 1e-3, "poisson")
    assert (contract.in_dim, contract.out_dim, contract.layer_sizes) == (16, 12, (24, 12))
    assert contract.tokens_per_image == 1 + (16 // 8) ** 2
    assert json.loads(sidecar_path(path).read_text())["dt"] == 1e-3
    graph = nir.read(path)
    assert list(graph.nodes["input"].input_type["input"]) == [16]
    assert list(graph.nodes["output"].output_type["output"]) == [12]


def test_a_fine_tuned_checkpoint_exports_its_own_encoder(tmp_path, capsys):
    # a fine-tuned checkpoint holds the TaskModel's weights: the backbone under "backbone."
    cfg = load_config(ROOT / "configs" / "default.yaml", [*TINY, "finetune.task=vqa"])
    torch.manual_seed(1)
    tokenizer = small_tokenizer()
    answers = ("a", "b", "c")
    model = build_task_model(cfg, len(tokenizer), tokenizer.pad_token_id, answers)
    path = tmp_path / "vqa" / "ckpt.pt"
    ckpt = save_model_checkpoint(path, cfg, model, tokenizer, task="vqa", answers=answers)
    assert load_cli().main([str(ckpt)]) == 0
    assert "100.00% of output spikes" in capsys.readouterr().out
    graph = nir.read(ckpt.parent / "encoder.nir")
    exported = [n.weight for n in graph.nodes.values() if isinstance(n, nir.Affine)]
    layers = [
        m
        for m in model.backbone.semantic_abstract_encoder.network
        if isinstance(m, torch.nn.Linear)
    ]
    assert len(exported) == len(layers)
    for weight, layer in zip(exported, layers, strict=True):
        assert np.array_equal(weight, layer.weight.detach().numpy())


def test_missing_checkpoint_is_one_line_without_traceback(tmp_path):
    result = run_cli(str(tmp_path / "none.pt"))
    assert result.returncode == 2
    assert result.stderr.startswith("error: checkpoint") and "not found" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


class Payload:
    pass


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("corrupt", "is not a readable ash-neuro checkpoint"),
        ("foreign", "was not written by ash-neuro"),
        ("pickle", "not loaded for safety"),
        ("ann_only", "this checkpoint has no spiking encoder (model.spiking.kind=none)"),
        ("other_code", "does not fit the network its config builds (size mismatch for "),
        ("output_dir", "cannot write"),
        ("nan_weights", "holds non-finite weights (semantic_abstract_encoder.network.0.weight)"),
    ],
)
def test_bad_inputs_are_one_line_errors(kind, message, tmp_path, capsys):
    ckpt, args = tmp_path / "ckpt.pt", []
    if kind == "corrupt":
        ckpt.write_bytes(b"\x00 not a checkpoint")
    elif kind == "foreign":
        torch.save({"state_dict": {}}, ckpt)
    elif kind == "pickle":
        torch.save({"format": "ash-neuro-checkpoint", "version": 2, "obj": Payload()}, ckpt)
    elif kind == "ann_only":
        make_checkpoint(ckpt, "model.spiking.kind=none")
    elif kind == "other_code":  # weights of a 24-wide layer under a config asking for 20
        state = load_checkpoint(make_checkpoint(ckpt))
        state["config"]["model"]["spiking"]["hidden_dims"] = [20]
        save_checkpoint(state, ckpt)
    elif kind == "nan_weights":  # a diverged model never reaches a graph
        state = load_checkpoint(make_checkpoint(ckpt))
        state["model"]["semantic_abstract_encoder.network.0.weight"][0, 0] = float("nan")
        torch.save(state, ckpt)
    else:
        make_checkpoint(ckpt)
        args = ["-o", str(tmp_path)]
    with pytest.raises(SystemExit) as info:
        load_cli().main([str(ckpt), *args])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_a_graph_that_does_not_reproduce_the_encoder_exits_1(tmp_path, capsys, monkeypatch):
    from ash_neuro.nir_export import verify

    original = verify.run_from_nir

    def run_skewed(graph, x, dt):
        spikes = original(graph, x, dt)
        spikes["output"] = 1 - spikes["output"]
        return spikes

    monkeypatch.setattr(verify, "run_from_nir", run_skewed)
    ckpt = make_checkpoint(tmp_path / "ckpt.pt")
    assert load_cli().main([str(ckpt)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: norse.from_nir of the written graph agrees") and "not 100%" in err
    assert not (tmp_path / "encoder.nir").exists()


def test_contract_knows_every_input_encoding_of_the_model():
    assert set(ENCODINGS) == set(SPIKE_CODINGS.names())


def test_a_pretrained_visual_backbone_sets_and_records_the_encoders_input_width(tmp_path, capsys):
    """A Hugging Face ViT folder (tiny, saved here; removed before the export: the checkpoint
    rebuilds it) as the visual encoder: the spiking encoder reads its 24-wide tokens and the
    contract says so."""
    from ash_neuro.models.backbones import resolve_backbones
    from tests.models.test_pretrained_visual import tiny_vision

    folder = tiny_vision(tmp_path / "vit")
    cfg = load_config(
        ROOT / "configs" / "default.yaml", [*TINY, f"model.visual.pretrained={folder}"]
    )
    cfg = resolve_backbones(cfg)
    tokenizer = small_tokenizer()
    model = build_model(cfg, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    ckpt = save_model_checkpoint(tmp_path / "run" / "ckpt.pt", cfg, model, tokenizer)
    shutil.rmtree(folder)
    assert load_cli().main([str(ckpt)]) == 0
    out = capsys.readouterr().out
    assert "100.00% of output spikes" in out
    assert float(out.split("output spike rate: ")[1].split()[0]) > 0.01  # not silent
    contract = read_contract(ckpt.parent / "encoder.nir")
    # [CLS] and the 4x4 patch grid of a 32 px input in 8 px patches, 24 wide
    assert (contract.in_dim, contract.tokens_per_image) == (24, 1 + 16)
    assert str(folder) in contract.visual_encoder and "width 24" in contract.visual_encoder
    graph = nir.read(ckpt.parent / "encoder.nir")
    assert list(graph.nodes["input"].input_type["input"]) == [24]


def test_first_layer_on_the_host_leaves_the_first_affine_out(tmp_path, capsys):
    """--first-layer host: the graph starts at the first LIF, its Input as wide as that layer
    and fed one-to-one; the contract says so; the graph is verified on the first Affine's
    outputs against the encoder (norse.from_nir and the NumPy reference, both 100%)."""
    ckpt = make_checkpoint(tmp_path / "run" / "ckpt.pt")
    assert load_cli().main([str(ckpt), "--first-layer", "host"]) == 0
    out = capsys.readouterr().out
    assert "nodes: Input, LIF x2, Affine, Output" in out
    assert "the first Affine on the host: (5, " in out
    assert "norse.from_nir of the written file vs the encoder: 100.00% of output spikes" in out
    assert "NIR's equations (NumPy, forward Euler) vs the encoder: 100.00%" in out
    assert float(out.split("output spike rate: ")[1].split()[0]) > 0.01
    path = ckpt.parent / "encoder.nir"
    contract = read_contract(path)
    assert contract.first_layer == "host" and contract.graph_in_dim == 24
    assert (contract.in_dim, contract.layer_sizes) == (16, (24, 12))
    graph = nir.read(path)
    assert list(graph.nodes["input"].input_type["input"]) == [24]
    first_lif = next(name for name, node in graph.nodes.items() if isinstance(node, nir.LIF))
    assert ("input", first_lif) in graph.edges
    (affine,) = [n for n in graph.nodes.values() if isinstance(n, nir.Affine)]
    assert affine.weight.shape == (12, 24)  # the second layer; the first is the host's


def test_a_version_1_contract_reads_as_the_first_layer_on_the_chip():
    from ash_neuro.nir_export.contract import EncoderContract

    old = {
        "time_steps": 4, "dt": 1e-3, "in_dim": 8, "out_dim": 4, "tokens_per_image": 5,
        "layer_sizes": [6, 4], "input_encoding": "current", "input_gain": 1.0,
        "encoding": "x", "schema": "ash-neuro/encoder-contract", "version": 1,
    }  # fmt: skip
    contract = EncoderContract.from_dict(old)
    assert contract.first_layer == "chip" and contract.version == 2 and contract.graph_in_dim == 8
