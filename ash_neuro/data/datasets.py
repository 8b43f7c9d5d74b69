"""Torch datasets for every task, over any record source, and the one collator they share.

A dataset takes a world file path (read through `world_file.WorldSource`) or any object that
implements `records.Source`; items are untokenised, and `Collator(tokenizer, max_len)` turns a
list of items of any task into a batch. Use it as the DataLoader's `collate_fn` (it runs in the
loader's workers); `dataset.collator` builds one from the dataset's tokenizer and max_len.

Batch contract (B batch size; H = W image size; L the longest text of the batch, at most
max_len; K = max_instances, 6 for the procedural world):

  every task
    image            float32 (B, 3, H, W)  RGB in [0, 1]
    image_id         int64   (B,)          image index within its split
    text_ids         int64   (B, L)        WordPiece ids: [CLS] ... [SEP], then [PAD] (id 0)
    text_mask        int64   (B, L)        1 on tokens, 0 on padding
    text             list[str] of B        the raw sentences, for logging and evaluation
  CaptionDataset     text is a caption
  VQADataset         text is the question, plus
    answer           int64   (B,)          index into `dataset.answers`
    answer_scores    float32 (B, A)        VQA soft scores min(#agreeing annotators / 3, 1),
                                           one-hot for the world's exact answers
    family           int64   (B,)          question family (`dataset.families`), -1 if unknown
  EntailmentDataset  text is the hypothesis, plus
    label            int64   (B,)          0 entailment, 1 neutral, 2 contradiction
  NLVRDataset        text is the statement; image is the left image, plus
    image_b          float32 (B, 3, H, W)  the right image
    image_id_b       int64   (B,)
    label            int64   (B,)          1 true, 0 false
  GroundingDataset   text is the referring expression, plus
    box              float32 (B, 4)        target box x0, y0, x1, y1 normalised to [0, 1]
    candidate_boxes  float32 (B, K, 4)     every instance box of the image, zero padded
    candidate_mask   bool    (B, K)        True on real candidates
    target_index     int64   (B,)          row of the target in candidate_boxes
  with_panoptic=True (asked for when the visual encoder reads instance maps and the source has
  them: `models.factory.reads_instance_maps`) adds, for image (NLVR: also `_b` keys for image_b)
    instance_map     int64   (B, H, W)     0 wall, 1 floor (stuff), 2 + k instance k
    object_classes   int64   (B, K)        panoptic class of instance 2 + k (2 + shape index:
                                           see the world's `panoptic_classes`), -1 padding
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

from ash_neuro.data.records import NLVRRecord, Source
from ash_neuro.data.world_file import WorldSource
from ash_neuro.errors import AshError

MAX_INSTANCES = 6  # the world's max_objects bound (config.py checks max_objects <= 6)
IMAGE_KEYS = ("image", "image_b")


def open_source(source: str | Path | Source, split: str) -> Source:
    """A world file path becomes a `WorldSource` for `split`; a source object is used as is."""
    if isinstance(source, str | Path):
        return WorldSource(source, split)
    return source


def images_to_float(images: np.ndarray) -> Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255)


class Collator:
    """Batches items of any task: tokenises `text`, converts images, stacks everything else."""

    def __init__(self, tokenizer, max_len: int) -> None:
        self.tokenizer, self.max_len = tokenizer, max_len

    def __call__(self, items: list[dict]) -> dict:
        texts = [item["text"] for item in items]
        encoded = self.tokenizer(
            texts, padding="longest", truncation=True, max_length=self.max_len, return_tensors="pt"
        )
        batch: dict = {
            "text_ids": encoded["input_ids"].long(),
            "text_mask": encoded["attention_mask"].long(),
            "text": texts,
        }
        for key in items[0]:
            if key == "text":
                continue
            values = np.stack([item[key] for item in items])
            batch[key] = images_to_float(values) if key in IMAGE_KEYS else torch.from_numpy(values)
        return batch


class TaskDataset(Dataset):
    """Image fields shared by every task; subclasses add the text and the task's labels.

    `table` names the `Source` method that lists the task's records (e.g. "vqa").
    """

    table = ""

    def __init__(
        self,
        source: str | Path | Source,
        split: str = "train",
        tokenizer=None,
        max_len: int = 32,
        with_panoptic: bool = False,
        max_instances: int = MAX_INSTANCES,
    ) -> None:
        self.source = open_source(source, split)
        self.tokenizer, self.max_len = tokenizer, max_len
        self.with_panoptic, self.max_instances = with_panoptic, max_instances
        self.records = getattr(self.source, self.table)() if self.table else []

    def __len__(self) -> int:
        return len(self.records)

    @property
    def collator(self) -> Collator:
        if self.tokenizer is None:
            raise AshError("this dataset was built without a tokenizer; pass one to build batches")
        return Collator(self.tokenizer, self.max_len)

    def item_images(self, index: int) -> tuple[int, ...]:
        """The image indices item `index` reads, without reading them."""
        record = self.records[index]
        if isinstance(record, NLVRRecord):
            return record.image_a, record.image_b
        return (record.image,)

    def image_fields(self, index: int, suffix: str = "") -> dict:
        fields = {
            f"image{suffix}": self.source.image(index),
            f"image_id{suffix}": np.int64(index),
        }
        if self.with_panoptic:
            instance_map, classes = self.source.panoptic(index)
            padded = np.full(self.max_instances, -1, np.int64)
            padded[: len(classes)] = classes
            fields[f"instance_map{suffix}"] = instance_map.astype(np.int64)
            fields[f"object_classes{suffix}"] = padded
        return fields


class CaptionDataset(TaskDataset):
    """(image, caption) pairs for pre-training and retrieval.

    caption="random": one item per image with one of its captions, drawn per (seed, epoch,
    index); call `set_epoch` before each epoch (DataLoader workers pick it up when the loader's
    iterator is created, so not with persistent_workers). caption="all": one item per caption.
    """

    table = "captions"

    def __init__(
        self,
        source: str | Path | Source,
        split: str = "train",
        tokenizer=None,
        max_len: int = 32,
        caption: str = "random",
        seed: int = 0,
        with_panoptic: bool = False,
    ) -> None:
        super().__init__(source, split, tokenizer, max_len, with_panoptic)
        if caption not in ("random", "all"):
            raise AshError(f"caption={caption!r}: choose 'random' or 'all'")
        self.mode, self.seed = caption, seed
        per_image: dict[int, list[int]] = {}
        for row, record in enumerate(self.records):
            per_image.setdefault(record.image, []).append(row)
        self.image_ids = sorted(per_image)
        self.rows_per_image = [per_image[i] for i in self.image_ids]
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        counts = np.array([len(rows) for rows in self.rows_per_image], dtype=np.int64)
        draws = np.random.default_rng([self.seed, epoch]).random(len(counts))
        self._choice = (draws * counts).astype(np.int64)

    def __len__(self) -> int:
        return len(self.records) if self.mode == "all" else len(self.image_ids)

    def item_images(self, index: int) -> tuple[int, ...]:
        if self.mode == "all":
            return super().item_images(index)
        return (self.image_ids[index],)

    def __getitem__(self, index: int) -> dict:
        if self.mode == "all":
            record = self.records[index]
        else:
            record = self.records[self.rows_per_image[index][self._choice[index]]]
        return {**self.image_fields(record.image), "text": record.text}


class VQADataset(TaskDataset):
    table = "vqa"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.answers: tuple[str, ...] = self.source.answers
        self.families: tuple[str, ...] = self.source.vqa_families

    def __getitem__(self, index: int) -> dict:
        r = self.records[index]
        scores = np.zeros(len(self.answers), np.float32)
        for answer, score in r.scores.items():
            scores[answer] = score
        return {
            **self.image_fields(r.image),
            "text": r.question,
            "answer": np.int64(r.answer),
            "answer_scores": scores,
            "family": np.int64(r.family),
        }


class EntailmentDataset(TaskDataset):
    table = "entailment"

    def __getitem__(self, index: int) -> dict:
        r = self.records[index]
        return {**self.image_fields(r.image), "text": r.hypothesis, "label": np.int64(r.label)}


class NLVRDataset(TaskDataset):
    table = "nlvr"

    def __getitem__(self, index: int) -> dict:
        r = self.records[index]
        return {
            **self.image_fields(r.image_a),
            **self.image_fields(r.image_b, suffix="_b"),
            "text": r.text,
            "label": np.int64(r.label),
        }


class GroundingDataset(TaskDataset):
    table = "grounding"

    def __getitem__(self, index: int) -> dict:
        r = self.records[index]
        n = len(r.boxes)
        if n > self.max_instances:
            raise AshError(
                f"image {r.image} has {n} candidate boxes; raise max_instances above "
                f"{self.max_instances}"
            )
        boxes = np.zeros((self.max_instances, 4), np.float32)
        boxes[:n] = r.boxes
        return {
            **self.image_fields(r.image),
            "text": r.text,
            "box": boxes[r.target].copy(),
            "candidate_boxes": boxes,
            "candidate_mask": np.arange(self.max_instances) < n,
            "target_index": np.int64(r.target),
        }


class FirstImages(Subset):
    """The items of a task dataset that read only its split's first `count` images (each item
    keeps its index); `set_epoch` reaches the dataset."""

    def __init__(self, dataset: TaskDataset, count: int) -> None:
        rows = [i for i in range(len(dataset)) if max(dataset.item_images(i)) < count]
        super().__init__(dataset, rows)
        self.count = count

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)


def first_images(dataset: TaskDataset, fraction: float) -> Dataset:
    """`dataset` restricted to the first ceil(`fraction` * N) of its split's N images
    (`train.image_fraction`); the whole dataset when `fraction` is 1."""
    if fraction >= 1:
        return dataset
    subset = FirstImages(dataset, math.ceil(fraction * len(dataset.source)))
    if not len(subset):
        raise AshError(
            f"train.image_fraction={fraction} keeps {subset.count} of {len(dataset.source)} "
            "images and no example reads only those; raise it"
        )
    return subset


@dataclass(frozen=True)
class RetrievalSplit:
    """Everything image-text retrieval evaluation needs for one split."""

    images: Tensor  # (N, 3, H, W) float32 in [0, 1]
    texts: list[str]  # every caption of those images
    txt2img: Tensor  # (T,) int64: the image of each caption
    img2txt: list[list[int]]  # the captions of each image
    instance_maps: Tensor | None = None  # (N, H, W) int64, with_panoptic only


def has_panoptic(source: Source) -> bool:
    """Whether `source` serves panoptic maps (`Source.has_panoptic`; False if it does not say)."""
    return bool(getattr(source, "has_panoptic", False))


def instance_maps(source: Source, count: int) -> Tensor:
    """The panoptic instance maps of the first `count` images of `source`, `(count, H, W)`
    int64."""
    return torch.from_numpy(
        np.stack([source.panoptic(i)[0] for i in range(count)]).astype(np.int64)
    )


def retrieval_split(
    source: str | Path | Source,
    split: str = "test",
    limit: int | None = None,
    with_panoptic: bool = False,
) -> RetrievalSplit:
    """The first `limit` images of a split (all if None or 0) with all their captions (and, with
    `with_panoptic`, their panoptic instance maps)."""
    src = open_source(source, split)
    n = min(limit, len(src)) if limit else len(src)
    captions: Sequence = [r for r in src.captions() if r.image < n]
    img2txt: list[list[int]] = [[] for _ in range(n)]
    for row, record in enumerate(captions):
        img2txt[record.image].append(row)
    return RetrievalSplit(
        # per image: a file-backed source would decode its whole split for `images()`
        images=images_to_float(np.stack([src.image(i) for i in range(n)])),
        texts=[r.text for r in captions],
        txt2img=torch.tensor([r.image for r in captions], dtype=torch.int64),
        img2txt=img2txt,
        instance_maps=instance_maps(src, n) if with_panoptic else None,
    )
