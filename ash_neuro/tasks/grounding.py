"""Referring-expression grounding: pick the candidate box the expression describes.

fuse(expression, image)[CLS] and each candidate box's pooled visual tokens ─► one score per
candidate (`BoxScoringHead`); the predicted box is the best one. A box is described by its
coordinates and by the visual tokens it covers, pooled per token set of the adapter (ANN tokens,
spike-rate tokens) with the patch/box overlap as weights (segment tokens, GSHN's instances: the
box area each segment covers). Trained with cross-entropy over the
candidates; judged by accuracy at IoU >= 0.5 (and mean IoU); trivial baseline: the candidate
whose centre lies nearest the image centre.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ash_neuro.data.datasets import MAX_INSTANCES, GroundingDataset, TaskDataset
from ash_neuro.data.records import Source
from ash_neuro.losses.mlm import TokenizerInfo
from ash_neuro.metrics import box_iou, iou_accuracy
from ash_neuro.models.ash_net import ASHNet
from ash_neuro.models.outputs import TokenLayout, TokenSegments, VisualOutput
from ash_neuro.models.task_heads import BoxScoringHead, pool_regions, pool_segments
from ash_neuro.models.task_model import TaskModel
from ash_neuro.registry import TASKS
from ash_neuro.tasks.base import Task, fused_cls, within_limit


def centre_box(boxes: Tensor) -> Tensor:
    """The candidate of `(K, 4)` normalised boxes whose centre lies nearest the image centre."""
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    return boxes[((centres - 0.5) ** 2).sum(dim=1).argmin()]


def grounding_metrics(pred: Tensor, target: Tensor) -> dict[str, float]:
    """Accuracy at IoU >= 0.5 and mean IoU (percent) of boxes `(N, 4)`."""
    return {
        "acc_iou50": iou_accuracy(pred, target),
        "mean_iou": 100.0 * box_iou(pred, target).mean().item(),
    }


def box_regions(visual: VisualOutput, layout: TokenLayout, boxes: Tensor) -> Tensor:
    """Each box `(B, K, 4)`'s features `(B, K, dim)` from one block of the joined tokens: patch
    tokens pooled by patch/box overlap, segment tokens by segment/box pixel overlap."""
    tokens = visual.tokens[:, layout.start : layout.stop]
    if isinstance(layout, TokenSegments):
        return pool_segments(tokens, visual.features.segments, boxes)
    return pool_regions(tokens, boxes)


@TASKS.register("grounding")
class Grounding(Task):
    name = "grounding"
    main_metric = "acc_iou50"
    headline = ("acc_iou50",)
    baseline_name = "centre box"
    dataset_class = GroundingDataset

    def dataset(self, source: Source, split: str, tokenizer=None) -> TaskDataset:
        # real data sets hold more candidate boxes than the world's 6
        k = getattr(source, "max_candidates", MAX_INSTANCES)
        max_len = self.cfg.model.text.max_len
        panoptic = self.with_panoptic(source)
        return GroundingDataset(
            source, split, tokenizer, max_len, with_panoptic=panoptic, max_instances=k
        )

    def build_head(self, backbone: ASHNet, answers: Sequence[str]) -> nn.Module:
        sets = backbone.adapter.token_sets
        return BoxScoringHead(backbone.text_encoder.width, sets * backbone.cfg.visual.dim)

    def logits(self, model: TaskModel, batch: Mapping[str, Tensor], visual: VisualOutput) -> Tensor:
        cls = fused_cls(model, batch, visual)
        boxes = batch["candidate_boxes"]
        regions = torch.cat([box_regions(visual, g, boxes) for g in visual.grids], dim=-1)
        return model.head(cls, regions, boxes, batch["candidate_mask"])

    def loss(
        self, model: TaskModel, batch: Mapping[str, Tensor], info: TokenizerInfo
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        logits, rates = model(batch)
        loss = F.cross_entropy(logits, batch["target_index"])
        return {self.name: loss, "total": loss}, rates

    def outputs(self, model, dataset, batch: Mapping[str, Tensor], logits: Tensor):
        pred = logits.argmax(dim=-1)
        rows = torch.arange(len(pred), device=pred.device)
        return {"pred_box": batch["candidate_boxes"][rows, pred], "box": batch["box"]}

    def metrics(self, outputs: Mapping[str, Tensor]) -> dict[str, float]:
        return grounding_metrics(outputs["pred_box"], outputs["box"])

    def baseline(self, train: Source, source: Source, split: str, limit: int) -> dict[str, float]:
        records = source.grounding()
        records = [records[row] for row in within_limit(records, limit)]
        boxes = [torch.as_tensor(r.boxes, dtype=torch.float32) for r in records]
        pred = torch.stack([centre_box(b) for b in boxes])
        target = torch.stack([b[r.target] for b, r in zip(boxes, records, strict=True)])
        return grounding_metrics(pred, target)
