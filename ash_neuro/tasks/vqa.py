"""VQA: a classifier over the answer vocabulary on the question fused with the image.

fuse(question, image)[CLS] ─► classifier over the answers of the fine-tuning data, trained with
binary cross-entropy against the soft answer scores (`ash_neuro.losses.vqa`); judged by VQA soft
accuracy; trivial baseline: the training split's majority answer.

The answer vocabulary travels with the checkpoint (`TaskModel.answers`): evaluated on a data set
with another vocabulary, each predicted answer is looked up there by its text, and one the data
set does not know scores 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from ash_neuro.data.datasets import TaskDataset, VQADataset
from ash_neuro.data.records import Source
from ash_neuro.losses.mlm import TokenizerInfo
from ash_neuro.losses.vqa import vqa_soft_bce_loss
from ash_neuro.metrics import accuracy, vqa_soft_accuracy
from ash_neuro.models.ash_net import ASHNet
from ash_neuro.models.task_heads import ClassifierHead
from ash_neuro.models.task_model import TaskModel
from ash_neuro.registry import TASKS
from ash_neuro.tasks.base import Task, majority, within_limit


def answer_map(model_answers: Sequence[str], data_answers: Sequence[str]) -> Tensor:
    """`(len(model_answers),)` int64: each model answer's index in `data_answers`, -1 if none."""
    index = {answer: i for i, answer in enumerate(data_answers)}
    return torch.tensor([index.get(answer, -1) for answer in model_answers], dtype=torch.long)


@TASKS.register("vqa")
class VQA(Task):
    name = "vqa"
    main_metric = "vqa_acc"
    headline = ("vqa_acc",)
    baseline_name = "majority answer"
    dataset_class = VQADataset

    def answers(self, train: TaskDataset) -> tuple[str, ...]:
        return tuple(train.answers)

    def build_head(self, backbone: ASHNet, answers: Sequence[str]) -> nn.Module:
        width = backbone.text_encoder.width
        return ClassifierHead(width, len(answers), width)

    def loss(
        self, model: TaskModel, batch: Mapping[str, Tensor], info: TokenizerInfo
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        logits, rates = model(batch)
        loss = vqa_soft_bce_loss(logits, batch["answer_scores"])
        return {self.name: loss, "total": loss}, rates

    def outputs(
        self, model: TaskModel, dataset: TaskDataset, batch: Mapping[str, Tensor], logits: Tensor
    ) -> dict[str, Tensor]:
        pred = logits.argmax(dim=-1)
        if model.answers != tuple(dataset.answers):
            pred = answer_map(model.answers, dataset.answers).to(pred.device)[pred]
        known = pred >= 0
        scores = batch["answer_scores"].gather(1, pred.clamp(min=0)[:, None]).squeeze(1)
        return {"pred": pred, "answer": batch["answer"], "score": scores * known}

    def metrics(self, outputs: Mapping[str, Tensor]) -> dict[str, float]:
        return {
            "vqa_acc": 100.0 * outputs["score"].float().mean().item(),
            "exact_acc": accuracy(outputs["pred"], outputs["answer"]),
        }

    def baseline(self, train: Source, source: Source, split: str, limit: int) -> dict[str, float]:
        records = source.vqa()
        records = [records[row] for row in within_limit(records, limit)]
        totals: Counter = Counter()
        for record in train.vqa():
            totals.update(record.scores)
        answer = majority(totals)
        scores = torch.tensor([[r.scores.get(answer, 0.0)] for r in records])
        pred = torch.zeros(len(records), dtype=torch.long)
        return {
            "vqa_acc": vqa_soft_accuracy(pred, scores),
            "exact_acc": accuracy(pred + answer, torch.tensor([r.answer for r in records])),
        }
