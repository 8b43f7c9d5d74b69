"""VE and NLVR: classifiers over the fused [CLS] of one image (VE) or of each image of a pair
(NLVR), trained with cross-entropy, judged by accuracy; trivial baseline: the training split's
majority label.

    ve    fuse(hypothesis, image)[CLS] ─► entailment / neutral / contradiction
    nlvr  fuse(statement, left)[CLS] ⊕ fuse(statement, right)[CLS] ─► false / true
          (the two images' [CLS] states side by side, as ALBEF and ViCHA do)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from ash_neuro.data.datasets import EntailmentDataset, NLVRDataset
from ash_neuro.data.records import Source
from ash_neuro.metrics import accuracy
from ash_neuro.models.ash_net import ASHNet
from ash_neuro.models.outputs import VisualOutput
from ash_neuro.models.task_heads import ClassifierHead
from ash_neuro.models.task_model import TaskModel
from ash_neuro.registry import TASKS
from ash_neuro.tasks.base import Task, majority, within_limit

VE_CLASSES = 3  # entailment, neutral, contradiction
NLVR_CLASSES = 2  # false, true


class LabelTask(Task):
    """A classifier over `classes` labels of the `records` table (a `Source` method)."""

    classes: int
    records: str
    main_metric = "acc"
    headline = ("acc",)
    baseline_name = "majority label"

    def build_head(self, backbone: ASHNet, answers: Sequence[str]) -> nn.Module:
        width = backbone.text_encoder.width
        return ClassifierHead(width * len(self.image_suffixes), self.classes, width)

    def metrics(self, outputs: Mapping[str, Tensor]) -> dict[str, float]:
        return {"acc": accuracy(outputs["pred"], outputs["label"])}

    def baseline(self, train: Source, source: Source, split: str, limit: int) -> dict[str, float]:
        records = getattr(source, self.records)()
        records = [records[row] for row in within_limit(records, limit)]
        label = majority(Counter(r.label for r in getattr(train, self.records)()))
        labels = torch.tensor([r.label for r in records])
        return {"acc": accuracy(torch.full_like(labels, label), labels)}


@TASKS.register("ve")
class VisualEntailment(LabelTask):
    name = "ve"
    classes = VE_CLASSES
    records = "entailment"
    dataset_class = EntailmentDataset


@TASKS.register("nlvr")
class VisualReasoning(LabelTask):
    name = "nlvr"
    classes = NLVR_CLASSES
    records = "nlvr"
    dataset_class = NLVRDataset
    image_suffixes = ("", "_b")

    def logits(self, model: TaskModel, batch: Mapping[str, Tensor], visual: VisualOutput) -> Tensor:
        # one pass over both images (left ones first); the statement is fused with each
        ids, mask = batch["text_ids"], batch["text_mask"]
        ids, mask = torch.cat([ids, ids]), torch.cat([mask, mask])
        text = model.backbone.encode_text(ids, mask)
        fused = model.backbone.fuse(text.hidden, mask, visual.tokens, visual_mask=visual.mask)
        left, right = fused[:, 0].chunk(2)
        return model.head(torch.cat([left, right], dim=-1))
