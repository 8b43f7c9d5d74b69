"""TaskModel: the one ASH-Net backbone plus the head of one downstream task.

The task (`finetune.task`) only chooses the head and how a batch flows to it; the encoders,
adapter and fusion encoder are the backbone's, shared by every task (no per-task copy):

    vqa        fuse(question, image)[CLS] ─► classifier over the answer vocabulary
    ve         fuse(hypothesis, image)[CLS] ─► classifier over entailment/neutral/contradiction
    nlvr       fuse(statement, left)[CLS] ⊕ fuse(statement, right)[CLS] ─► true/false
    grounding  fuse(expression, image)[CLS] and each candidate box's pooled visual tokens
               ─► one score per candidate (the predicted box is the best one)
    retrieval  no new head: the backbone's ITC and ITM heads
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from ash_neuro.models.ash_net import ASHNet, VisualOutput
from ash_neuro.models.task_heads import BoxScoringHead, ClassifierHead, pool_regions

TASKS = ("retrieval", "vqa", "nlvr", "ve", "grounding")
VE_CLASSES = 3  # entailment, neutral, contradiction
NLVR_CLASSES = 2  # false, true


class TaskModel(nn.Module):
    """`TaskModel(backbone, task, n_answers)(batch) -> (logits, spike rates)`.

    logits: vqa `(B, n_answers)`, ve `(B, 3)`, nlvr `(B, 2)`, grounding `(B, K)` over the
    candidate boxes (-inf on padding). Batches follow `ash_neuro.data.datasets`' contract.
    """

    def __init__(self, backbone: ASHNet, task: str, n_answers: int = 0) -> None:
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
        self.backbone, self.task = backbone, task
        width = backbone.text_encoder.width
        if task == "vqa":
            self.head = ClassifierHead(width, n_answers, width)
        elif task == "ve":
            self.head = ClassifierHead(width, VE_CLASSES, width)
        elif task == "nlvr":
            self.head = ClassifierHead(2 * width, NLVR_CLASSES, width)
        elif task == "grounding":
            # a hybrid backbone joins two token sets (ANN, spike rates): pool both per box
            token_sets = 2 if backbone.hybrid else 1
            self.head = BoxScoringHead(width, token_sets * backbone.cfg.visual.dim)
        else:
            self.head = None

    def forward(
        self, batch: Mapping[str, Tensor], visual: VisualOutput | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """`visual`: the batch's images already encoded (e.g. spikes computed outside PyTorch,
        re-joined by `ASHNet.join_visual`; nlvr: left images, then right ones); default:
        `batch["image"]` through the backbone."""
        if self.head is None:
            raise ValueError("retrieval has no task head: use the backbone's ITC/ITM heads")
        net = self.backbone
        ids, mask = batch["text_ids"], batch["text_mask"]
        image = batch["image"]
        if self.task == "nlvr":
            # one pass over both images; the statement is fused with each
            image = torch.cat([image, batch["image_b"]])
            ids, mask = torch.cat([ids, ids]), torch.cat([mask, mask])
        if visual is None:
            visual = net.encode_image(image)
        text = net.encode_text(ids, mask)
        cls = net.fuse(text.hidden, mask, visual.tokens)[:, 0]
        rates = {name: rate.detach() for name, rate in visual.spike_rates.items()}
        if self.task == "nlvr":
            left, right = cls.chunk(2)
            return self.head(torch.cat([left, right], dim=-1)), rates
        if self.task == "grounding":
            n = visual.ann_tokens.shape[1]
            sets = visual.tokens.unflatten(1, (-1, n))[:, :, 1:]  # (B, sets, patches, dim)
            boxes = batch["candidate_boxes"]
            regions = torch.cat([pool_regions(s, boxes) for s in sets.unbind(1)], dim=-1)
            return self.head(cls, regions, boxes, batch["candidate_mask"]), rates
        return self.head(cls), rates
