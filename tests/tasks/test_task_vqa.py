"""VQA: answers looked up across vocabularies, scoring, and the majority-answer baseline."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from ash_neuro.data.records import VQARecord
from ash_neuro.data.sources import configured_source
from ash_neuro.registry import TASKS
from ash_neuro.tasks.vqa import VQA, answer_map


def test_answer_map_finds_each_model_answer_in_the_data_vocabulary():
    mapped = answer_map(("red", "two", "blue", "cube"), ("blue", "cube", "red", "sphere"))
    assert mapped.tolist() == [2, -1, 0, 1]


def test_outputs_score_each_prediction_in_the_data_sets_vocabulary(tiny_config):
    class Model:  # what `VQA.outputs` reads of a TaskModel
        answers = ("yes", "no", "three")

    class Dataset:
        answers = ("no", "yes", "two")

    logits = torch.tensor([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0]])
    batch = {
        # data-set columns: no, yes, two
        "answer_scores": torch.tensor([[0.3, 1.0, 0.0], [0.6, 0.0, 0.0], [0.0, 0.0, 1.0]]),
        "answer": torch.tensor([1, 0, 2]),
    }
    out = VQA(tiny_config).outputs(Model(), Dataset(), batch, logits)
    # predicted yes -> column 1 (1.0), no -> column 0 (0.6), three -> unknown (0)
    assert out["pred"].tolist() == [1, 0, -1]
    assert out["score"].tolist() == pytest.approx([1.0, 0.6, 0.0])
    metrics = VQA(tiny_config).metrics(out)
    assert metrics["vqa_acc"] == pytest.approx(100 * 1.6 / 3)
    assert metrics["exact_acc"] == pytest.approx(200 / 3)


def test_majority_answer_baseline_counts_the_training_split(tiny_config):
    train, test = configured_source(tiny_config, "train"), configured_source(tiny_config, "test")
    totals: Counter = Counter()
    for record in train.vqa():
        totals.update(record.scores)
    best = max(totals.values())
    answer = min(a for a, total in totals.items() if total == best)
    records = test.vqa()
    soft = 100 * sum(r.scores.get(answer, 0.0) for r in records) / len(records)
    exact = 100 * sum(r.answer == answer for r in records) / len(records)
    baseline = TASKS.get("vqa")(tiny_config).baseline(train, test, "test", 0)
    assert baseline == {"vqa_acc": pytest.approx(soft), "exact_acc": pytest.approx(exact)}
    assert 0 < exact < 100  # the test split is not degenerate, so the check means something


class Records:
    """A stand-in source that only lists VQA records."""

    def __init__(self, records):
        self.records = records

    def vqa(self):
        return self.records


def test_the_majority_answer_sums_soft_scores_not_exact_answers(tiny_config):
    """Answer 0 is the exact answer of two training questions (soft score 0.3 each), answer 1 of
    one, but answer 1's soft scores sum to 0.6 + 0.6 + 1.0 = 2.2 against 0.6."""
    train = Records(
        [
            VQARecord(0, "q", 0, -1, {0: 0.3, 1: 0.6}),
            VQARecord(1, "q", 0, -1, {0: 0.3, 1: 0.6}),
            VQARecord(2, "q", 1, -1, {1: 1.0}),
        ]
    )
    test = Records(
        [
            VQARecord(0, "q", 1, -1, {1: 1.0}),
            VQARecord(1, "q", 0, -1, {0: 1.0, 1: 0.3}),
            VQARecord(5, "q", 1, -1, {1: 0.6}),  # beyond a limit of 5 images
        ]
    )
    # answer 1 sums 2.2, answer 0 sums 0.6: the baseline answers 1 everywhere
    baseline = VQA(tiny_config).baseline(train, test, "test", 0)
    assert baseline == {
        "vqa_acc": pytest.approx(100 * (1.0 + 0.3 + 0.6) / 3),
        "exact_acc": pytest.approx(200 / 3),
    }
    limited = VQA(tiny_config).baseline(train, test, "test", 5)
    assert limited == {"vqa_acc": pytest.approx(65.0), "exact_acc": pytest.approx(50.0)}
