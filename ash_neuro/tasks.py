"""The five downstream tasks: their data, fine-tuning losses, evaluation and trivial baselines.

    task       data (train / evaluation)          loss                  metrics (percent)
    retrieval  captions / every caption of the    ITC + ITM (with hard  R@1/5/10 both ways, ITM
               first images                       negatives)            re-ranking (config)
    vqa        questions, soft answer scores      soft-target BCE       VQA soft accuracy
    nlvr       statements over image pairs        cross-entropy         accuracy
    ve         hypotheses, 3 labels               cross-entropy         accuracy
    grounding  referring expressions, candidates  cross-entropy over    accuracy at IoU >= 0.5
                                                  the candidate boxes   (and mean IoU)

Trivial baselines: chance (retrieval), the training split's majority answer or label (VQA,
NLVR, VE), and the candidate box nearest the image centre (grounding). An evaluation `limit`
keeps the examples whose images are all among the split's first `limit` (0: every example).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from ash_neuro.config import Config, LossConfig
from ash_neuro.data.datasets import (
    MAX_INSTANCES,
    CaptionDataset,
    Collator,
    EntailmentDataset,
    GroundingDataset,
    NLVRDataset,
    TaskDataset,
    VQADataset,
    open_source,
    retrieval_split,
)
from ash_neuro.data.readers import open_dataset_source
from ash_neuro.data.records import NLVRRecord, Source
from ash_neuro.losses.mlm import TokenizerInfo
from ash_neuro.losses.vqa import vqa_soft_bce_loss
from ash_neuro.metrics import (
    accuracy,
    box_iou,
    chance_recall,
    iou_accuracy,
    vqa_soft_accuracy,
)
from ash_neuro.models.ash_net import VisualOutput
from ash_neuro.models.task_model import TASKS, TaskModel
from ash_neuro.objective import pretraining_losses
from ash_neuro.retrieval import evaluate_retrieval

DATASETS: dict[str, type[TaskDataset]] = {
    "retrieval": CaptionDataset,
    "vqa": VQADataset,
    "nlvr": NLVRDataset,
    "ve": EntailmentDataset,
    "grounding": GroundingDataset,
}
# the metric each task is judged by, and the ones printed during fine-tuning
MAIN_METRIC = {
    "retrieval": "r_mean",
    "vqa": "vqa_acc",
    "nlvr": "acc",
    "ve": "acc",
    "grounding": "acc_iou50",
}
HEADLINE = {
    "retrieval": ("t2i_r1", "t2i_r5", "i2t_r1", "i2t_r5"),
    "vqa": ("vqa_acc",),
    "nlvr": ("acc",),
    "ve": ("acc",),
    "grounding": ("acc_iou50",),
}
BASELINE = {
    "retrieval": "chance",
    "vqa": "majority answer",
    "nlvr": "majority label",
    "ve": "majority label",
    "grounding": "centre box",
}
EVAL_BATCH = 128


def record_images(record) -> tuple[int, ...]:
    """The image indices an example reads."""
    if isinstance(record, NLVRRecord):
        return record.image_a, record.image_b
    return (record.image,)


def within_limit(records: Sequence, limit: int) -> list[int]:
    """Rows of the records whose images all lie among the first `limit` (all when 0)."""
    return [
        row for row, record in enumerate(records) if not limit or max(record_images(record)) < limit
    ]


_SOURCES: dict[tuple, Source] = {}


def task_source(cfg: Config, split: str) -> Source:
    """One split of the configured data (`data:`): the world file, or a real data set read in
    its own format; opened once per process, with the reader's summary printed."""
    d = cfg.data
    if d.kind == "world" and not d.root:
        return open_source(cfg.world.path, split)
    key = (dataclasses.astuple(d), cfg.world.image_size, split)
    if key not in _SOURCES:
        options = dict(
            annotations=d.annotations,
            images=d.images,
            questions=d.questions,
            answers=d.answers,
            top_k=d.top_k,
            instances=d.instances,
        )
        source = open_dataset_source(
            d.kind,
            d.root or cfg.world.path,
            split,
            image_size=cfg.world.image_size,
            transform=d.transform,
            on_error=d.on_error,
            check_images=d.check_images,
            **options,
        )
        if hasattr(source, "summary"):
            print(source.summary())
        _SOURCES[key] = source
    return _SOURCES[key]


def task_dataset(cfg: Config, task: str, split: str, tokenizer=None) -> TaskDataset:
    """The task's dataset of one split of the configured data (retrieval: one random caption
    per image and epoch, for training)."""
    if task not in DATASETS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    source, max_len = task_source(cfg, split), cfg.model.text.max_len
    if task == "retrieval":
        return CaptionDataset(source, split, tokenizer, max_len, seed=cfg.train.seed)
    if task == "grounding":  # real data sets hold more candidate boxes than the world's 6
        k = getattr(source, "max_candidates", MAX_INSTANCES)
        return GroundingDataset(source, split, tokenizer, max_len, max_instances=k)
    return DATASETS[task](source, split, tokenizer, max_len)


def retrieval_losses(loss_cfg: LossConfig) -> LossConfig:
    """Retrieval fine-tuning keeps ITC and ITM (ALBEF) and switches every other loss off."""
    return dataclasses.replace(loss_cfg, mlm=0.0, spike_contrastive=0.0, stua=0.0, spike_rate=0.0)


def task_losses(
    model: TaskModel, batch: Mapping[str, Tensor], loss_cfg: LossConfig, info: TokenizerInfo
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """({loss name: 0-d tensor, "total": what is minimised}, {LIF layer: mean spike rate})."""
    if model.task == "retrieval":
        return pretraining_losses(model.backbone, batch, retrieval_losses(loss_cfg), info)
    logits, rates = model(batch)
    if model.task == "vqa":
        loss = vqa_soft_bce_loss(logits, batch["answer_scores"])
    elif model.task == "grounding":
        loss = F.cross_entropy(logits, batch["target_index"])
    else:
        loss = F.cross_entropy(logits, batch["label"])
    return {model.task: loss, "total": loss}, rates


class FinetuneObjective(nn.Module):
    """`task_losses` as a module holding the model (what DistributedDataParallel wraps)."""

    def __init__(self, model: TaskModel, loss_cfg: LossConfig, tokenizer) -> None:
        super().__init__()
        self.model, self.loss_cfg = model, loss_cfg
        self.info = TokenizerInfo.from_tokenizer(tokenizer)

    def forward(self, batch: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        return task_losses(self.model, batch, self.loss_cfg, self.info)


@torch.no_grad()
def predict(
    model: TaskModel,
    dataset: Dataset,
    collate_fn,
    device: torch.device,
    encode: Callable[[Mapping], VisualOutput] | None = None,
) -> dict[str, Tensor]:
    """Predictions and targets over a dataset, on the CPU: vqa `pred`, `answer`,
    `answer_scores`; nlvr/ve `pred`, `label`; grounding `pred_box`, `box`. `encode(batch)`
    supplies the batch's encoded images (default: the model encodes `batch["image"]`)."""
    was_training = model.training
    model.eval()
    out: dict[str, list[Tensor]] = {}
    try:
        for batch in DataLoader(dataset, batch_size=EVAL_BATCH, collate_fn=collate_fn):
            batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
            pred = model(batch, encode(batch) if encode else None)[0].argmax(dim=-1)
            if model.task == "grounding":
                rows = torch.arange(len(pred), device=pred.device)
                got = {"pred_box": batch["candidate_boxes"][rows, pred], "box": batch["box"]}
            elif model.task == "vqa":
                got = {k: batch[k] for k in ("answer", "answer_scores")} | {"pred": pred}
            else:
                got = {"pred": pred, "label": batch["label"]}
            for key, value in got.items():
                out.setdefault(key, []).append(value.cpu())
    finally:
        model.train(was_training)
    return {key: torch.cat(values) for key, values in out.items()}


def task_metrics(task: str, outputs: Mapping[str, Tensor]) -> dict[str, float]:
    """The task's metrics (percent) from `predict`'s outputs."""
    if task == "vqa":
        return {
            "vqa_acc": vqa_soft_accuracy(outputs["pred"], outputs["answer_scores"]),
            "exact_acc": accuracy(outputs["pred"], outputs["answer"]),
        }
    if task == "grounding":
        return {
            "acc_iou50": iou_accuracy(outputs["pred_box"], outputs["box"]),
            "mean_iou": 100.0 * box_iou(outputs["pred_box"], outputs["box"]).mean().item(),
        }
    return {"acc": accuracy(outputs["pred"], outputs["label"])}


def retrieval_metrics(
    backbone: nn.Module,
    cfg: Config,
    tokenizer,
    device: torch.device,
    split: str,
    limit: int = 0,
    rerank_k: int = 0,
) -> dict[str, float]:
    """Recall@1/5/10 both ways over the first `limit` images of a split and all their captions
    (ITC ranking; ITM re-ranking of the top `rerank_k`); `n` is the number of captions."""
    data = retrieval_split(task_source(cfg, split), split, limit=limit)
    metrics = evaluate_retrieval(
        backbone,
        data.images,
        data.texts,
        data.txt2img,
        data.img2txt,
        tokenizer,
        cfg.model.text.max_len,
        device,
        rerank_k=rerank_k,
    )
    return {**metrics, "n": len(data.texts)}


def evaluate_task(
    model: TaskModel,
    cfg: Config,
    tokenizer,
    device: torch.device,
    split: str,
    limit: int = 0,
) -> dict[str, float]:
    """`model`'s metrics on a split (retrieval: on its first `limit` images, with
    `finetune.itm_rerank_k` re-ranking); `n` is the number of examples (queries: texts)."""
    if model.task == "retrieval":
        return retrieval_metrics(
            model.backbone, cfg, tokenizer, device, split, limit, cfg.finetune.itm_rerank_k
        )
    dataset = task_dataset(cfg, model.task, split, tokenizer)
    subset = Subset(dataset, within_limit(dataset.records, limit))
    outputs = predict(model, subset, Collator(tokenizer, cfg.model.text.max_len), device)
    return {**task_metrics(model.task, outputs), "n": len(subset)}


def majority(counts: Mapping[int, float]) -> int:
    """The value of the largest count (the smallest value on a tie, to be reproducible)."""
    return min(counts, key=lambda value: (-counts[value], value))


def centre_box(boxes: Tensor) -> Tensor:
    """The candidate of `(K, 4)` normalised boxes whose centre lies nearest the image centre."""
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    return boxes[((centres - 0.5) ** 2).sum(dim=1).argmin()]


def trivial_baseline(cfg: Config, task: str, split: str, limit: int = 0) -> dict[str, float]:
    """The task's trivial baseline on a split, with the keys of `evaluate_task`'s metrics.

    Majority answers and labels are counted on the training split; the centre box is the
    candidate whose centre lies nearest the image centre.
    """
    if task == "retrieval":
        return chance_recall(retrieval_split(task_source(cfg, split), split, limit=limit).img2txt)
    table = DATASETS[task].table
    source = task_source(cfg, split)
    records = getattr(source, table)()
    records = [records[row] for row in within_limit(records, limit)]
    train = getattr(task_source(cfg, "train"), table)()
    if task == "vqa":
        totals: Counter = Counter()
        for record in train:
            totals.update(record.scores)
        answer = majority(totals)
        scores = torch.tensor([[r.scores.get(answer, 0.0)] for r in records])
        pred = torch.zeros(len(records), dtype=torch.long)
        return {
            "vqa_acc": vqa_soft_accuracy(pred, scores),
            "exact_acc": accuracy(pred + answer, torch.tensor([r.answer for r in records])),
        }
    if task == "grounding":
        boxes = [torch.as_tensor(r.boxes, dtype=torch.float32) for r in records]
        pred = torch.stack([centre_box(b) for b in boxes])
        target = torch.stack([b[r.target] for b, r in zip(boxes, records, strict=True)])
        return {
            "acc_iou50": iou_accuracy(pred, target),
            "mean_iou": 100.0 * box_iou(pred, target).mean().item(),
        }
    label = majority(Counter(r.label for r in train))
    labels = torch.tensor([r.label for r in records])
    return {"acc": accuracy(torch.full_like(labels, label), labels)}
