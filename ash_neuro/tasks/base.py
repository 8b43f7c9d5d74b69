"""What a downstream task is: one registered class bundling its dataset, head, fine-tuning
loss, predictions, metrics, trivial baseline and the encode hook.

    task       data (train / evaluation)          loss                  metrics (percent)
    retrieval  captions / every caption of the    ITC + ITM (with hard  R@1/5/10 both ways, ITM
               first images                       negatives)            re-ranking (config)
    vqa        questions, soft answer scores      soft-target BCE       VQA soft accuracy
    nlvr       statements over image pairs        cross-entropy         accuracy
    ve         hypotheses, 3 labels               cross-entropy         accuracy
    grounding  referring expressions, candidates  cross-entropy over    accuracy at IoU >= 0.5
                                                  the candidate boxes   (and mean IoU)

The encode hook: a task never calls the visual encoders itself; its images reach the head
through `encode(VisualInput) -> VisualOutput` (the images, their indices in the split and,
when the visual encoder reads them and the data has them, their panoptic maps). By default
that is the backbone's `encode_image`; `ash_neuro.deploy` passes one that looks up the outputs
re-joined from spikes computed on Lava, so every task runs with its encoder on Lava through the
same code that evaluates it in PyTorch.

An evaluation `limit` keeps the examples whose images are all among the split's first `limit`
(0: every example), so that a deployment encodes exactly the first `limit` images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset

from ash_neuro.config import Config
from ash_neuro.data.datasets import Collator, TaskDataset
from ash_neuro.data.records import NLVRRecord, Source
from ash_neuro.errors import AshError
from ash_neuro.losses.mlm import TokenizerInfo
from ash_neuro.models.ash_net import ASHNet
from ash_neuro.models.factory import reads_instance_maps
from ash_neuro.models.outputs import Encode, VisualOutput

if TYPE_CHECKING:
    from ash_neuro.models.task_model import TaskModel

EVAL_BATCH = 128


def record_images(record: Any) -> tuple[int, ...]:
    """The image indices an example reads."""
    if isinstance(record, NLVRRecord):
        return record.image_a, record.image_b
    return (record.image,)


def within_limit(records: Sequence, limit: int) -> list[int]:
    """Rows of the records whose images all lie among the first `limit` (all when 0)."""
    return [
        row for row, record in enumerate(records) if not limit or max(record_images(record)) < limit
    ]


def majority(counts: Mapping[int, float]) -> int:
    """The value of the largest count (the smallest value on a tie, to be reproducible)."""
    return min(counts, key=lambda value: (-counts[value], value))


def fused_cls(model: TaskModel, batch: Mapping[str, Tensor], visual: VisualOutput) -> Tensor:
    """The batch's texts fused with their images, position 0 ([CLS]): `(B, width)`."""
    text = model.backbone.encode_text(batch["text_ids"], batch["text_mask"])
    mask = batch["text_mask"]
    return model.backbone.fuse(text.hidden, mask, visual.tokens, visual_mask=visual.mask)[:, 0]


class Task:
    """A downstream task; subclasses fill in the class attributes and the methods below.

    `cfg` is the run's config (text length, seeds, the task's own options in `finetune`).
    """

    name: ClassVar[str]
    main_metric: ClassVar[str]  # the metric the task is judged by
    headline: ClassVar[tuple[str, ...]]  # the metrics printed during fine-tuning
    baseline_name: ClassVar[str]
    dataset_class: ClassVar[type[TaskDataset]]
    # the batch-key suffix of every image an example reads (`image`, `image_id`, ... and
    # `image_b`, ...), in the order the examples' images are encoded and concatenated
    image_suffixes: ClassVar[tuple[str, ...]] = ("",)

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    # --- data ------------------------------------------------------------------------------

    def dataset(self, source: Source, split: str, tokenizer: Any = None) -> TaskDataset:
        """The task's examples of one split of `source` (with panoptic maps when the visual
        encoder reads them and the source has them)."""
        max_len, panoptic = self.cfg.model.text.max_len, self.with_panoptic(source)
        return self.dataset_class(source, split, tokenizer, max_len, with_panoptic=panoptic)

    def with_panoptic(self, source: Source) -> bool:
        """Whether the task's batches carry `source`'s panoptic maps: only for a visual encoder
        that reads them (`models.factory.reads_instance_maps`)."""
        return reads_instance_maps(self.cfg, source)

    def answers(self, train: TaskDataset) -> tuple[str, ...]:
        """The output vocabulary a head is built over and a checkpoint keeps (VQA only)."""
        return ()

    # --- model -----------------------------------------------------------------------------

    def build_head(self, backbone: ASHNet, answers: Sequence[str]) -> nn.Module | None:
        """The task's head on `backbone` (None: the backbone's own heads serve)."""
        raise NotImplementedError

    def logits(self, model: TaskModel, batch: Mapping[str, Tensor], visual: VisualOutput) -> Tensor:
        """Head outputs for a batch whose images (`image_suffixes` order) are in `visual`."""
        return model.head(fused_cls(model, batch, visual))

    def loss(
        self, model: TaskModel, batch: Mapping[str, Tensor], info: TokenizerInfo
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """({loss name: 0-d tensor, "total": what is minimised}, {LIF layer: mean spike rate})."""
        logits, rates = model(batch)
        loss = F.cross_entropy(logits, batch["label"])
        return {self.name: loss, "total": loss}, rates

    # --- evaluation ------------------------------------------------------------------------

    def outputs(
        self, model: TaskModel, dataset: TaskDataset, batch: Mapping[str, Tensor], logits: Tensor
    ) -> dict[str, Tensor]:
        """A batch's predictions and targets, what `metrics` reads."""
        return {"pred": logits.argmax(dim=-1), "label": batch["label"]}

    def metrics(self, outputs: Mapping[str, Tensor]) -> dict[str, float]:
        raise NotImplementedError

    def baseline(self, train: Source, source: Source, split: str, limit: int) -> dict[str, float]:
        """The trivial baseline on `split` of `source`, with `metrics`' keys; majority answers
        and labels are counted on `train`."""
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(
        self,
        model: TaskModel,
        source: Source,
        split: str,
        tokenizer: Any,
        device: torch.device,
        limit: int = 0,
        encode: Encode | None = None,
    ) -> dict[str, float]:
        """The task's metrics on a split, and `n`, the number of examples."""
        dataset = self.dataset(source, split, tokenizer)
        subset = Subset(dataset, within_limit(dataset.records, limit))
        if not len(subset):
            among = f" among its first {limit} images" if limit else ""
            raise AshError(
                f"split {split} holds no {self.name} examples{among}; evaluate another split "
                "or data set"
            )
        collate = Collator(tokenizer, self.cfg.model.text.max_len)
        was_training = model.training
        model.eval()
        gathered: dict[str, list[Tensor]] = {}
        try:
            for batch in DataLoader(subset, batch_size=EVAL_BATCH, collate_fn=collate):
                batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
                logits, _ = model(batch, encode)
                for key, value in self.outputs(model, dataset, batch, logits).items():
                    gathered.setdefault(key, []).append(value.cpu())
        finally:
            model.train(was_training)
        outputs = {key: torch.cat(values) for key, values in gathered.items()}
        return {**self.metrics(outputs), "n": len(subset)}


class TaskObjective(nn.Module):
    """A task's fine-tuning loss as a module holding the model (what DistributedDataParallel
    wraps): `objective(batch) -> (losses, spike rates)`."""

    def __init__(self, model: TaskModel, tokenizer: Any) -> None:
        super().__init__()
        self.model = model
        self.info = TokenizerInfo.from_tokenizer(tokenizer)

    def forward(self, batch: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        return self.model.task.loss(self.model, batch, self.info)
