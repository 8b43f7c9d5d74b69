"""Fine-tuning and evaluation: a tiny run per task with exact resume, the reports, the trivial
baselines, and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest
import torch

from ash_neuro import finetune as finetune_module
from ash_neuro import loop as loop_module
from ash_neuro.checkpoint import load_checkpoint
from ash_neuro.config import load_config
from ash_neuro.data.records import EntailmentRecord, NLVRRecord
from ash_neuro.data.world_file import WorldSource
from ash_neuro.errors import CheckpointError
from ash_neuro.evaluate import evaluate_checkpoint, markdown
from ash_neuro.evaluate import main as evaluate_main
from ash_neuro.models.task_model import TASKS
from ash_neuro.tasks import HEADLINE, centre_box, trivial_baseline, within_limit
from ash_neuro.train import train
from tests.conftest import ROOT, TINY_MODEL, TINY_TRAIN, TINY_WORLD


def tiny_overrides(world) -> list[str]:
    return TINY_WORLD + TINY_MODEL + TINY_TRAIN + [f"world.path={world}"]


@pytest.fixture(scope="module")
def pretrained(tiny_world, tmp_path_factory):
    """A tiny pre-training checkpoint (2 steps)."""
    out = tmp_path_factory.mktemp("pretrained")
    train(
        load_config(
            ROOT / "configs/default.yaml", tiny_overrides(tiny_world) + ["train.max_steps=2"]
        ),
        out,
    )
    return out / "ckpt.pt"


def finetune_config(world, task: str, *extra: str):
    overrides = tiny_overrides(world) + [
        f"finetune.task={task}",
        "finetune.itm_rerank_k=4",
        "train.max_steps=4",
        "train.batch_size=8",
        "train.ckpt_every=2",
        *extra,
    ]
    return load_config(ROOT / "configs/finetune.yaml", overrides)


class Killed(Exception):
    pass


@pytest.mark.parametrize("task", TASKS)
def test_finetune_writes_checkpoint_and_resumes_exactly(
    task, tiny_world, pretrained, tmp_path, monkeypatch
):
    cfg = finetune_config(tiny_world, task)
    metrics = finetune_module.finetune(cfg, tmp_path / "straight", pretrained)
    assert set(HEADLINE[task]) <= set(metrics)
    state = load_checkpoint(tmp_path / "straight" / "ckpt.pt")
    assert state["progress"]["step"] == 4 and state["task"]["name"] == task
    assert state["init"] == str(pretrained)
    records = (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()
    assert any(f"loss/{'itc' if task == 'retrieval' else task}" in r for r in records)

    real_save = loop_module.save_checkpoint

    def save_then_die(state, path):
        real_save(state, path)
        raise Killed

    monkeypatch.setattr(loop_module, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        finetune_module.finetune(cfg, tmp_path / "killed", pretrained)
    monkeypatch.setattr(loop_module, "save_checkpoint", real_save)
    assert load_checkpoint(tmp_path / "killed" / "ckpt.pt")["progress"]["step"] == 2
    finetune_module.finetune(cfg, tmp_path / "killed", pretrained, resume=True)
    resumed = load_checkpoint(tmp_path / "killed" / "ckpt.pt")["model"]
    assert resumed.keys() == state["model"].keys()
    for key, value in state["model"].items():
        assert torch.equal(resumed[key], value), key


def test_backbone_starts_from_init_and_head_from_scratch(tiny_world, pretrained, tmp_path):
    cfg = finetune_config(tiny_world, "ve", "train.max_steps=1", "train.lr=0.0")
    finetune_module.finetune(cfg, tmp_path, pretrained)
    tuned = load_checkpoint(tmp_path / "ckpt.pt")["model"]
    for key, value in load_checkpoint(pretrained)["model"].items():
        assert torch.equal(tuned[f"backbone.{key}"], value), key
    assert any(key.startswith("head.") for key in tuned)


def test_resume_with_another_task_is_refused(tiny_world, pretrained, tmp_path):
    finetune_module.finetune(finetune_config(tiny_world, "ve"), tmp_path, pretrained)
    with pytest.raises(CheckpointError, match=r"different config \(finetune.task\)"):
        finetune_module.finetune(
            finetune_config(tiny_world, "nlvr"), tmp_path, pretrained, resume=True
        )


def test_evaluate_writes_json_and_markdown_with_the_baseline(tiny_world, pretrained, tmp_path):
    finetune_module.finetune(finetune_config(tiny_world, "vqa"), tmp_path / "vqa", pretrained)
    # overrides may follow the options
    report = evaluate_main([str(tmp_path / "vqa" / "ckpt.pt"), "--split", "val", "train.threads=1"])
    saved = json.loads((tmp_path / "vqa" / "eval_vqa_val.json").read_text())
    assert saved == report
    assert report["task"] == "vqa" and report["model"] == "hybrid"
    assert report["n_examples"] == len(WorldSource(tiny_world, "val").vqa())
    assert {"vqa_acc", "exact_acc"} <= set(report["metrics"])
    assert report["baseline"]["name"] == "majority answer"
    md = (tmp_path / "vqa" / "eval_vqa_val.md").read_text()
    assert md == markdown(report)
    assert "| metric | trivial baseline (majority answer) | hybrid |" in md
    assert "| vqa_acc |" in md


def test_a_pretraining_checkpoint_evaluates_retrieval_only(pretrained):
    report = evaluate_checkpoint(pretrained, split="test", overrides=["finetune.itm_rerank_k=3"])
    assert report["task"] == "retrieval"
    assert {"t2i_r1", "i2t_r10"} <= set(report["metrics"])
    assert report["baseline"]["metrics"]["t2i_r1"] == pytest.approx(100 / 24)
    with pytest.raises(CheckpointError, match="has no vqa head.*ash_neuro.finetune --task vqa"):
        evaluate_checkpoint(pretrained, task="vqa")


def test_majority_baselines_count_the_training_split(tiny_world, pretrained):
    cfg = finetune_config(tiny_world, "ve")
    train_labels = Counter(r.label for r in WorldSource(tiny_world, "train").entailment())
    label = max(sorted(train_labels), key=lambda x: train_labels[x])
    test = [r.label for r in WorldSource(tiny_world, "test").entailment()]
    expected = 100 * sum(t == label for t in test) / len(test)
    assert trivial_baseline(cfg, "ve", "test")["acc"] == pytest.approx(expected)
    answers = Counter(r.answer for r in WorldSource(tiny_world, "train").vqa())
    top = max(sorted(answers), key=lambda x: answers[x])
    test_vqa = WorldSource(tiny_world, "test").vqa()
    expected = 100 * sum(r.answer == top for r in test_vqa) / len(test_vqa)
    assert trivial_baseline(cfg, "vqa", "test")["vqa_acc"] == pytest.approx(expected)


def test_centre_box_picks_the_candidate_nearest_the_centre():
    boxes = torch.tensor([[0.0, 0.0, 0.2, 0.2], [0.4, 0.5, 0.7, 0.7], [0.8, 0.8, 1.0, 1.0]])
    assert torch.equal(centre_box(boxes), boxes[1])


def test_within_limit_keeps_examples_whose_images_all_fit():
    records = [
        EntailmentRecord(0, "a", 0),
        EntailmentRecord(3, "b", 1),
        NLVRRecord(1, 2, "c", 1),
        NLVRRecord(1, 5, "d", 0),
    ]
    assert within_limit(records, 3) == [0, 2]
    assert within_limit(records, 0) == [0, 1, 2, 3]


def run_cli(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, timeout=180
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "captioning", "--init", "x.pt"], "finetune.task: 'captioning' is not one of"),
        (
            ["--task", "vqa", "--init", "/nonexistent/ckpt.pt"],
            "checkpoint /nonexistent/ckpt.pt not found",
        ),
        (["--task", "vqa", "--init", "FOREIGN"], "was not written by ash-neuro"),
        (
            ["--task", "vqa", "--init", "PRETRAINED", "model.hybrid=false"],
            "model.hybrid: checkpoint True, this run False",
        ),
    ],
)
def test_finetune_cli_bad_input_is_one_line(args, message, tiny_world, pretrained, tmp_path):
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    args = [{"FOREIGN": str(foreign), "PRETRAINED": str(pretrained)}.get(a, a) for a in args]
    result = run_cli(
        "ash_neuro.finetune", "--out", str(tmp_path / "run"), *args, *tiny_overrides(tiny_world)
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().startswith("error:") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_evaluate_cli_unknown_task_is_one_line(pretrained):
    result = run_cli("ash_neuro.evaluate", str(pretrained), "--task", "captioning")
    assert result.returncode == 2
    assert "unknown task 'captioning'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_finetune_reads_a_real_format_data_set(tiny_world, pretrained, tmp_path):
    """data.kind=snli_ve: the same command fine-tunes on SNLI-VE JSON lines and images."""
    from tests.data.readers.reader_fixtures import snli_ve_record, write_image, write_jsonl

    root = tmp_path / "snli_ve"
    labels = ("entailment", "neutral", "contradiction")
    for code in range(4):
        write_image(root / "flickr30k_images" / f"{100 + code}.jpg", code)
    for name in ("train", "dev"):  # the reader maps split val to the file of "dev"
        records = [
            snli_ve_record(str(100 + i % 4), f"a red circle number {i}", labels[i % 3])
            for i in range(18)
        ]
        records.append(snli_ve_record("999", "an image that is not there", "neutral"))
        write_jsonl(root / f"snli_ve_{name}.jsonl", records)
    cfg = finetune_config(tiny_world, "ve", "data.kind=snli_ve", f"data.root={root}")
    metrics = finetune_module.finetune(cfg, tmp_path / "out", pretrained)
    assert load_checkpoint(tmp_path / "out" / "ckpt.pt")["progress"]["step"] == 4
    assert metrics["n"] == 18  # the record whose image is missing was skipped
    assert 0.0 <= metrics["acc"] <= 100.0
