"""Task records and the source interface that every data format implements.

A source is one split of one data set: it serves images by index and the records of each task
it has. The torch datasets (`datasets.py`) read only this interface, so a reader for a real
format (COCO Karpathy captions, VQA v2, SNLI-VE, RefCOCO+, NLVR2) is a new module yielding the
same records; the procedural world (`world_file.WorldSource`) is one such source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class CaptionRecord:
    image: int
    text: str


@dataclass(frozen=True)
class VQARecord:
    image: int
    question: str
    answer: int  # index into the source's answer vocabulary
    family: int  # question family (program) index; -1 where a format has none
    # VQA soft scores {answer index: min(#annotators agreeing / 3, 1)}; one-hot for exact labels
    scores: dict[int, float]


@dataclass(frozen=True)
class EntailmentRecord:
    image: int
    hypothesis: str
    label: int  # 0 entailment, 1 neutral, 2 contradiction


@dataclass(frozen=True)
class GroundingRecord:
    image: int
    text: str
    target: int  # row of `boxes` that the expression refers to
    boxes: np.ndarray  # (n_candidates, 4) float32, x0 y0 x1 y1 normalised to [0, 1]


@dataclass(frozen=True)
class NLVRRecord:
    image_a: int  # the left image
    image_b: int  # the right image
    text: str
    label: int  # 1 true, 0 false


@dataclass(frozen=True)
class ObjectTags:
    """The tagged objects of one image (CMAL's anchor points are the tags a caption names).

    names      per object, the entity names it carries: ("circle", "red") for a world object,
               ("dog",) for a COCO instance (category names)
    instances  `(n,)` int64: each object's panoptic instance id (the world: 2 + k, which is the
               instance encoder's token), -1 where the data has no panoptic map
    boxes      `(n, 4)` float32: each object's box x0, y0, x1, y1 normalised to [0, 1]
    """

    names: tuple[tuple[str, ...], ...]
    instances: np.ndarray
    boxes: np.ndarray

    def __len__(self) -> int:
        return len(self.names)


class Source(Protocol):
    """One split of a vision-language data set."""

    answers: tuple[str, ...]  # the VQA answer vocabulary (empty if the source has no VQA)
    vqa_families: tuple[str, ...]  # names of VQARecord.family values (empty if none)
    has_panoptic: bool  # whether `panoptic` serves maps (the procedural world) or raises
    # optional: `has_object_tags` True and `object_tags(index) -> ObjectTags` where the data
    # tags the objects of its images (the world; COCO captions with instances.json; RefCOCO)

    def __len__(self) -> int:
        """Number of images."""

    def image(self, index: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB."""

    def images(self) -> np.ndarray:
        """All images, (N, H, W, 3) uint8."""

    def panoptic(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(instance_map (H, W) integer ids, object_classes (n_objects,) integer classes of the
        instances with ids FIRST_OBJECT + k); raises AshError if the source has none."""

    def captions(self) -> Sequence[CaptionRecord]: ...

    def vqa(self) -> Sequence[VQARecord]: ...

    def entailment(self) -> Sequence[EntailmentRecord]: ...

    def grounding(self) -> Sequence[GroundingRecord]: ...

    def nlvr(self) -> Sequence[NLVRRecord]: ...
