"""Fine-tuning and evaluation: a tiny run per task with exact resume, the reports, the trivial
baselines, and one-line errors for bad input. (The tasks' own pieces: tests/tasks/.)"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch

from ash_neuro import finetune as finetune_module
from ash_neuro import loop as loop_module
from ash_neuro.checkpoint import load_checkpoint
from ash_neuro.config import load_config
from ash_neuro.data.datasets import Collator, EntailmentDataset, VQADataset, retrieval_split
from ash_neuro.data.sources import configured_source
from ash_neuro.data.tokenizer import load_tokenizer
from ash_neuro.data.world_file import WorldSource
from ash_neuro.errors import CheckpointError, ConfigError
from ash_neuro.evaluate import evaluate_checkpoint, markdown
from ash_neuro.evaluate import main as evaluate_main
from ash_neuro.models.factory import load_model
from ash_neuro.registry import TASKS
from ash_neuro.train import train
from tests.conftest import ROOT, TINY_MODEL, TINY_TRAIN, TINY_WORLD
from tests.retrieval_reference import itc_scores, recall, reranked_recall

TASK_NAMES = ("retrieval", "vqa", "nlvr", "ve", "grounding")


def tiny_overrides(world) -> list[str]:
    """The run's overrides for fine-tuning (the model comes from the init checkpoint)."""
    return TINY_WORLD + TINY_TRAIN + [f"world.path={world}"]


@pytest.fixture(scope="module")
def pretrained(tiny_world, tmp_path_factory):
    """A tiny pre-training checkpoint (2 steps)."""
    out = tmp_path_factory.mktemp("pretrained")
    overrides = tiny_overrides(tiny_world) + TINY_MODEL + ["train.max_steps=2"]
    train(load_config(ROOT / "configs/default.yaml", overrides), out)
    return out / "ckpt.pt"


def finetune_config(world, init, task: str, *extra: str):
    overrides = tiny_overrides(world) + [
        f"finetune.task={task}",
        "finetune.itm_rerank_k=4",
        "train.max_steps=4",
        "train.batch_size=8",
        "train.ckpt_every=2",
        *extra,
    ]
    cfg, _ = finetune_module.finetune_config(ROOT / "configs/finetune.yaml", overrides, init)
    return cfg


class Killed(Exception):
    pass


def test_every_registered_task_is_fine_tuned_here():
    assert set(TASKS.names()) == set(TASK_NAMES)


@pytest.mark.parametrize("task", TASK_NAMES)
def test_finetune_writes_checkpoint_and_resumes_exactly(
    task, tiny_world, pretrained, tmp_path, monkeypatch
):
    cfg = finetune_config(tiny_world, pretrained, task)
    assert cfg.model == load_model(pretrained).cfg.model  # the network of --init
    metrics = finetune_module.finetune(cfg, tmp_path / "straight", pretrained)
    assert set(TASKS.get(task).headline) <= set(metrics)
    state = load_checkpoint(tmp_path / "straight" / "ckpt.pt")
    assert state["progress"]["step"] == 4 and state["kind"] == "finetune"
    assert state["task"]["name"] == task
    assert state["init"] == {"path": str(pretrained.resolve()), "step": 2}
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
    cfg = finetune_config(tiny_world, pretrained, "ve", "train.max_steps=1", "train.lr=0.0")
    finetune_module.finetune(cfg, tmp_path, pretrained)
    tuned = load_checkpoint(tmp_path / "ckpt.pt")["model"]
    for key, value in load_checkpoint(pretrained)["model"].items():
        assert torch.equal(tuned[f"backbone.{key}"], value), key
    assert any(key.startswith("head.") for key in tuned)


def test_model_overrides_are_refused(tiny_world, pretrained):
    overrides = tiny_overrides(tiny_world) + ["finetune.task=ve", "model.visual.depth=3"]
    with pytest.raises(ConfigError, match="model.\\* overrides cannot change it"):
        finetune_module.finetune_config(ROOT / "configs/finetune.yaml", overrides, pretrained)


def test_resume_with_another_task_is_refused(tiny_world, pretrained, tmp_path):
    finetune_module.finetune(finetune_config(tiny_world, pretrained, "ve"), tmp_path, pretrained)
    with pytest.raises(
        CheckpointError, match=r"another config \(finetune.task: checkpoint .ve., this run .nlvr.\)"
    ):
        finetune_module.finetune(
            finetune_config(tiny_world, pretrained, "nlvr"), tmp_path, pretrained, resume=True
        )


def markdown_rows(md: str) -> dict[str, tuple[str, float]]:
    """{metric: (baseline cell, model value)} read back from the report's table."""
    rows = {}
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("metric", "---"):
            rows[cells[0]] = (cells[1], float(cells[2]))
    return rows


def test_evaluate_writes_json_and_markdown_with_the_baseline(tiny_world, pretrained, tmp_path):
    cfg = finetune_config(tiny_world, pretrained, "vqa")
    finetune_module.finetune(cfg, tmp_path / "vqa", pretrained)
    # overrides may follow the options
    report = evaluate_main([str(tmp_path / "vqa" / "ckpt.pt"), "--split", "val", "train.threads=1"])
    saved = json.loads((tmp_path / "vqa" / "eval_vqa_val.json").read_text())
    assert saved == report
    assert report["task"] == "vqa" and report["model"] == "hybrid"
    assert report["n_examples"] == len(WorldSource(tiny_world, "val").vqa())
    assert report["data"]["same"] is True
    assert set(report["metrics"]) == {"vqa_acc", "exact_acc"}
    assert report["baseline"]["name"] == "majority answer"
    # the baseline is the task's own, on the same split
    train_source, val = configured_source(cfg, "train"), configured_source(cfg, "val")
    assert report["baseline"]["metrics"] == TASKS.get("vqa")(cfg).baseline(
        train_source, val, "val", 0
    )
    # the metrics: the saved model's answers, one question at a time, scored by the records
    loaded = load_model(tmp_path / "vqa" / "ckpt.pt")
    dataset = VQADataset(val, "val", loaded.tokenizer, cfg.model.text.max_len)
    assert loaded.model.answers == tuple(dataset.answers)
    collate, soft, exact = Collator(loaded.tokenizer, cfg.model.text.max_len), [], []
    with torch.no_grad():
        for item, record in zip(dataset, val.vqa()):
            pred = int(loaded.model(collate([item]))[0][0].argmax())
            soft.append(record.scores.get(pred, 0.0))
            exact.append(pred == record.answer)
    assert report["metrics"]["vqa_acc"] == pytest.approx(100 * sum(soft) / len(soft), abs=1e-4)
    assert report["metrics"]["exact_acc"] == pytest.approx(100 * sum(exact) / len(exact), abs=1e-4)
    # the Markdown table holds the JSON's numbers, rounded to two decimals
    md = (tmp_path / "vqa" / "eval_vqa_val.md").read_text()
    assert "| metric | trivial baseline (majority answer) | hybrid |" in md
    rows = markdown_rows(md)
    assert set(rows) == {"vqa_acc", "exact_acc"}
    for key, (base, value) in rows.items():
        assert value == pytest.approx(report["metrics"][key], abs=0.005)
        assert float(base) == pytest.approx(report["baseline"]["metrics"][key], abs=0.005)


def test_markdown_of_a_hand_made_report():
    report = {
        "checkpoint": "runs/x/ckpt.pt",
        "task": "retrieval",
        "split": "test",
        "model": "ann_only",
        "n_examples": 120,
        "data": {"trained_on": "world A", "evaluated_on": "coco B", "same": False},
        "metrics": {"t2i_r1": 12.3456, "r_mean": 50.0},
        "baseline": {"name": "chance", "metrics": {"t2i_r1": 4.166666}},
    }
    assert markdown(report) == (
        "## retrieval on test (120 examples)\n"
        "\n"
        "checkpoint `runs/x/ckpt.pt` (ann_only)\n"
        "\n"
        "data: coco B; **not the training data** (world A)\n"
        "\n"
        "| metric | trivial baseline (chance) | ann_only |\n"
        "| --- | --- | --- |\n"
        "| t2i_r1 | 4.17 | 12.35 |\n"
        "| r_mean | - | 50.00 |\n"
    )


def test_a_pretraining_checkpoint_evaluates_retrieval_only(tiny_world, pretrained):
    """ITC ranking, then ITM re-ranking of the top 3 (the override), against NumPy recall of
    scores computed one image and caption at a time from the checkpoint's own model."""
    loaded = load_model(pretrained)
    data = retrieval_split(tiny_world, "test")  # all 24 images
    max_len = loaded.cfg.model.text.max_len
    plain = evaluate_checkpoint(pretrained, split="test")
    assert plain["task"] == "retrieval" and plain["n_examples"] == len(data.texts)
    expected = recall(
        itc_scores(loaded.backbone, data, loaded.tokenizer, max_len),
        data.txt2img.tolist(),
        data.img2txt,
    )
    assert plain["metrics"] == pytest.approx(expected, abs=1e-4)
    report = evaluate_checkpoint(pretrained, split="test", overrides=["finetune.itm_rerank_k=3"])
    reranked = reranked_recall(loaded.backbone, data, loaded.tokenizer, max_len, k=3)
    assert report["metrics"] == pytest.approx(reranked, abs=1e-4)
    assert report["baseline"]["metrics"]["t2i_r1"] == pytest.approx(100 / 24)
    assert report["baseline"]["metrics"]["t2i_r10"] == pytest.approx(1000 / 24)
    with pytest.raises(CheckpointError, match="has no vqa head.*ash_neuro.finetune --task vqa"):
        evaluate_checkpoint(pretrained, task="vqa")


def run_cli(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, timeout=180
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--task", "captioning", "--init", "PRETRAINED"],
            "finetune.task: unknown task 'captioning'; registered: grounding, nlvr,",
        ),
        (
            ["--task", "vqa", "--init", "/nonexistent/ckpt.pt"],
            "checkpoint /nonexistent/ckpt.pt not found",
        ),
        (["--task", "vqa", "--init", "FOREIGN"], "was not written by ash-neuro"),
        (
            ["--task", "vqa", "--init", "PRETRAINED", "model.spiking.kind=none"],
            "model.* overrides cannot change it",
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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "captioning"], "finetune.task: unknown task 'captioning'"),
        (["--limit", "-1"], "--limit must be 0 (every image) or a positive number, got -1"),
        (["model.visual.depth=3"], "overrides may not change the network"),
        (["model.visual.depth=x"], "model.visual.depth: expected int, got str 'x'"),
    ],
)
def test_evaluate_cli_bad_input_is_one_line(pretrained, args, message):
    result = run_cli("ash_neuro.evaluate", str(pretrained), *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_finetune_reads_a_real_format_data_set(tiny_world, pretrained, tmp_path):
    """data.kind=snli_ve: the same command fine-tunes on SNLI-VE JSON lines and images; its
    validation accuracy is the saved model's, one example at a time."""
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
    cfg = finetune_config(tiny_world, pretrained, "ve", "data.kind=snli_ve", f"data.root={root}")
    metrics = finetune_module.finetune(cfg, tmp_path / "out", pretrained)
    assert load_checkpoint(tmp_path / "out" / "ckpt.pt")["progress"]["step"] == 4
    assert metrics["n"] == 18  # the record whose image is missing was skipped

    loaded = load_model(tmp_path / "out" / "ckpt.pt")
    dataset = EntailmentDataset(configured_source(cfg, "val"), "val", loaded.tokenizer, 24)
    assert [item["label"] for item in dataset] == [i % 3 for i in range(18)]
    collate, hits = Collator(loaded.tokenizer, cfg.model.text.max_len), 0
    with torch.no_grad():
        for item in dataset:
            logits, _ = loaded.model(collate([item]))
            hits += int(logits[0].argmax()) == int(item["label"])
    assert metrics["acc"] == pytest.approx(100 * hits / 18)


def test_resume_from_another_init_is_refused(tiny_world, pretrained, tmp_path):
    cfg = finetune_config(tiny_world, pretrained, "ve", "train.max_steps=1")
    finetune_module.finetune(cfg, tmp_path / "run", pretrained)
    other = tmp_path / "other" / "ckpt.pt"
    other.parent.mkdir()
    shutil.copy(pretrained, other)  # the same weights, found elsewhere: another --init
    with pytest.raises(CheckpointError, match=r"was fine-tuned from another --init \(.*pretrained"):
        finetune_module.finetune(cfg, tmp_path / "run", other, resume=True)


def test_a_tokenizer_fitted_to_the_data_is_carried_and_keeps_the_shared_rows(
    tiny_world, pretrained, tmp_path
):
    """`finetune.tokenizer`: the run tokenizes with that file, the checkpoint carries it, and
    (at lr 0) a token both vocabularies hold keeps --init's embedding row."""
    from ash_neuro.data.tokenizer import save_tokenizer, train_tokenizer

    fitted = tmp_path / "data.tokenizer.json"
    texts = ["is there a giraffe left of the red cube?", "how many giraffes are there?"]
    save_tokenizer(train_tokenizer(texts, 90), fitted)
    cfg = finetune_config(
        tiny_world,
        pretrained,
        "vqa",
        f"finetune.tokenizer={fitted}",
        "train.max_steps=1",
        "train.lr=0.0",
    )
    finetune_module.finetune(cfg, tmp_path / "vqa", pretrained)
    tuned = load_model(tmp_path / "vqa" / "ckpt.pt")
    assert tuned.tokenizer.tokenize("a giraffe") == ["a", "giraffe"]
    assert tuned.tokenizer.get_vocab() == load_tokenizer(fitted).get_vocab()
    init = load_model(pretrained)
    assert len(init.tokenizer.tokenize("giraffe")) > 1  # the world never says it
    old_rows = init.backbone.text_encoder.model.embeddings.word_embeddings.weight
    new_rows = tuned.backbone.text_encoder.model.embeddings.word_embeddings.weight
    assert new_rows.shape[0] == len(tuned.tokenizer)
    old_vocab, new_vocab = init.tokenizer.get_vocab(), tuned.tokenizer.get_vocab()
    shared = set(old_vocab) & set(new_vocab)
    assert {"red", "left", "[CLS]", "[MASK]"} <= shared
    for token in shared:
        assert torch.equal(new_rows[new_vocab[token]], old_rows[old_vocab[token]]), token
