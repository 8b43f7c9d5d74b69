"""VE and NLVR: the majority-label baseline, with the evaluation limit."""

from __future__ import annotations

from collections import Counter

import pytest

from ash_neuro.data.sources import configured_source
from ash_neuro.registry import TASKS
from ash_neuro.tasks.classification import VE_CLASSES, VisualEntailment, VisualReasoning


@pytest.mark.parametrize(("task", "table"), [("ve", "entailment"), ("nlvr", "nlvr")])
def test_majority_label_baseline_counts_the_training_split(tiny_config, task, table):
    train, test = configured_source(tiny_config, "train"), configured_source(tiny_config, "test")
    counts = Counter(r.label for r in getattr(train, table)())
    label = sorted(counts, key=lambda x: (-counts[x], x))[0]
    labels = [r.label for r in getattr(test, table)()]
    expected = 100 * sum(t == label for t in labels) / len(labels)
    assert TASKS.get(task)(tiny_config).baseline(train, test, "test", 0) == {
        "acc": pytest.approx(expected)
    }


def test_the_limit_keeps_examples_of_the_first_images(tiny_config):
    train, test = configured_source(tiny_config, "train"), configured_source(tiny_config, "test")
    counts = Counter(r.label for r in train.entailment())
    label = sorted(counts, key=lambda x: (-counts[x], x))[0]
    kept = [r.label for r in test.entailment() if r.image < 5]
    expected = 100 * sum(t == label for t in kept) / len(kept)
    baseline = VisualEntailment(tiny_config).baseline(train, test, "test", 5)
    assert baseline["acc"] == pytest.approx(expected)


def test_the_classes_and_images_of_each_task():
    assert VisualEntailment.classes == VE_CLASSES == 3 and VisualReasoning.classes == 2
    assert VisualReasoning.image_suffixes == ("", "_b")
