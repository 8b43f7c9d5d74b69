"""Anchor point detection (CMAL, arXiv 2410.12595): entities present in both modalities.

An anchor is the intersection of the image's object tags and the caption's words: a run of
caption words that names an entity of the data's lexicon (`ash_neuro/data/lexicons.py`:
"red", "balls", "traffic light"), where the image holds objects tagged with that entity. It
keeps the words it spans, the entity, and the objects carrying it (every one: "red" names both
red objects of an image; the associative prompt reads them together). Each occurrence is its
own anchor ("a red ball and a red box": two anchors for "red"), with its own tokens.

Where the tags come from (a source's `object_tags`, `records.ObjectTags`):

    world      each object's shape and colour from the scene, located exactly: its panoptic
               instance id is the instance encoder's token
    coco       COCO categories of instances.json (`data.instances`, Karpathy captions), located
    refcoco    by box (the model maps a box onto its segment tokens)

and where a source has none (Flickr30k, COCO without instances.json) the **caption fallback**:
every word of the lexicon in the caption is an anchor, assumed present (a caption describes
its image) and located nowhere, so the associative prompt reads the image as a whole for it
and fills no visual token. What that costs: anchors the image does not show (a caption that
names an absent thing), and association of words with whole images instead of objects; on
the world it is measured as the "CMAL (caption anchors)" row (README, "Measured").

Registered in `registry.ANCHOR_SOURCES` and chosen by `loss.anchors`: "tags" (the tags where
the source has them, the fallback otherwise) or "caption" (the fallback always, to measure it).

The collator (`AnchorCollator`) tokenises as `datasets.Collator` does and aligns anchors to
token positions with the fast tokenizer's word ids and character offsets: a word split into
several WordPiece tokens gives its anchor every one of them. Batch keys added (B captions,
L tokens, A anchors and O objects at most per caption in the batch, E the lexicon's
entities):

    word_index       int64 (B, L)     the caption word of each token, -1 for [CLS], [SEP], [PAD]
    anchor_token     int64 (B, L)     the anchor of each token, -1 for none
    anchor_entity    int64 (B, A)     each anchor's entity (lexicon index), -1 padding
    anchor_objects   bool  (B, A, O)  the image's objects tagged with it (none: the fallback)
    object_instance  int64 (B, O)     each object's panoptic instance id, -1 unknown or padding
    object_box       float32 (B, O, 4)  its box x0 y0 x1 y1 in [0, 1]
    object_entity    bool  (B, O, E)  the entities it carries
    object_mask      bool  (B, O)     True on real objects
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ash_neuro.data.datasets import Collator
from ash_neuro.data.lexicons import Lexicon, lexicon_for
from ash_neuro.data.records import ObjectTags, Source
from ash_neuro.registry import ANCHOR_SOURCES

ANCHOR_KEYS = (
    "word_index",
    "anchor_token",
    "anchor_entity",
    "anchor_objects",
    "object_instance",
    "object_box",
    "object_entity",
    "object_mask",
)


@dataclass(frozen=True)
class Anchor:
    """One anchor point of a caption: the `words` it spans (indices into the caption's words),
    its `entity` (lexicon index) and the image `objects` tagged with it (empty: located on the
    whole image, the caption fallback)."""

    words: tuple[int, ...]
    entity: int
    objects: tuple[int, ...] = ()


def mentions(words: Sequence[str], lexicon: Lexicon) -> list[tuple[tuple[int, ...], int]]:
    """(word indices, entity) of every lexicon form in `words` (lower case), left to right,
    the longest form first where forms overlap ("traffic light" before "light")."""
    found, start = [], 0
    while start < len(words):
        for length in range(min(lexicon.max_words, len(words) - start), 0, -1):
            entity = lexicon.forms.get(tuple(words[start : start + length]))
            if entity is not None:
                found.append((tuple(range(start, start + length)), entity))
                start += length
                break
        else:
            start += 1
    return found


def object_entities(tags: ObjectTags, lexicon: Lexicon) -> list[set[int]]:
    """Each object's entities (tag names outside the lexicon are dropped)."""
    return [
        {index for name in names if (index := lexicon.index(name)) is not None}
        for names in tags.names
    ]


@ANCHOR_SOURCES.register("tags")
class TagAnchors:
    """The intersection of the image's object tags and the caption's words; the caption
    fallback for an image whose source has no tags (`tags` None)."""

    def __call__(
        self, words: Sequence[str], tags: ObjectTags | None, lexicon: Lexicon
    ) -> list[Anchor]:
        if tags is None:
            return CaptionAnchors()(words, tags, lexicon)
        carried = object_entities(tags, lexicon)
        anchors = []
        for span, entity in mentions(words, lexicon):
            objects = tuple(k for k, entities in enumerate(carried) if entity in entities)
            if objects:
                anchors.append(Anchor(span, entity, objects))
        return anchors


@ANCHOR_SOURCES.register("caption")
class CaptionAnchors:
    """The caption fallback: every lexicon word of the caption, located on the whole image."""

    def __call__(
        self, words: Sequence[str], tags: ObjectTags | None, lexicon: Lexicon
    ) -> list[Anchor]:
        return [Anchor(span, entity) for span, entity in mentions(words, lexicon)]


def has_object_tags(source: Source) -> bool:
    return bool(getattr(source, "has_object_tags", False))


class AnchorCollator(Collator):
    """`datasets.Collator` plus the anchors of each caption in its image (items carry
    `image_id`, the image's index in `source`): the keys of `ANCHOR_KEYS`. `lexicon`: the
    entity vocabulary (default: the source's, `lexicons.lexicon_for`)."""

    def __init__(
        self,
        tokenizer,
        max_len: int,
        source: Source,
        anchors: str = "tags",
        lexicon: Lexicon | None = None,
    ) -> None:
        super().__init__(tokenizer, max_len)
        self.source, self.detect = source, ANCHOR_SOURCES.get(anchors)()
        self.lexicon = lexicon or lexicon_for(source)
        self.tagged = has_object_tags(source)

    def __call__(self, items: list[dict]) -> dict:
        batch = super().__call__(items)
        # the same call as Collator's, for its BatchEncoding (word ids and character offsets);
        # tokenising a batch of captions again costs about a millisecond
        encoded = self.tokenizer(
            batch["text"], padding="longest", truncation=True, max_length=self.max_len
        )
        tags = [
            self.source.object_tags(int(item["image_id"])) if self.tagged else None
            for item in items
        ]
        word_index = torch.tensor(
            [[-1 if w is None else w for w in encoded.word_ids(b)] for b in range(len(items))],
            dtype=torch.int64,
        )
        anchors = []
        for b, text in enumerate(batch["text"]):
            count = int(word_index[b].max()) + 1
            words = []
            for w in range(count):
                span = encoded.word_to_chars(b, w)
                words.append(text[span.start : span.end].lower())
            anchors.append(self.detect(words, tags[b], self.lexicon))
        return {**batch, "word_index": word_index, **self.tensors(word_index, anchors, tags)}

    def tensors(
        self,
        word_index: torch.Tensor,
        anchors: list[list[Anchor]],
        tags: list[ObjectTags | None],
    ) -> dict[str, torch.Tensor]:
        """The anchor and object tensors of a batch (see the module docstring)."""
        batch, length = word_index.shape
        most_anchors = max((len(a) for a in anchors), default=0)
        most_objects = max((len(t) for t in tags if t is not None), default=0)
        entities = len(self.lexicon.entities)
        anchor_token = torch.full((batch, length), -1, dtype=torch.int64)
        anchor_entity = torch.full((batch, most_anchors), -1, dtype=torch.int64)
        anchor_objects = torch.zeros(batch, most_anchors, most_objects, dtype=torch.bool)
        object_instance = torch.full((batch, most_objects), -1, dtype=torch.int64)
        object_box = torch.zeros(batch, most_objects, 4)
        object_entity = torch.zeros(batch, most_objects, entities, dtype=torch.bool)
        object_mask = torch.zeros(batch, most_objects, dtype=torch.bool)
        for b in range(batch):
            for a, anchor in enumerate(anchors[b]):
                for w in anchor.words:
                    anchor_token[b][word_index[b] == w] = a
                anchor_entity[b, a] = anchor.entity
                anchor_objects[b, a, list(anchor.objects)] = True
            if tags[b] is None:
                continue
            n = len(tags[b])
            object_instance[b, :n] = torch.from_numpy(np.asarray(tags[b].instances, np.int64))
            object_box[b, :n] = torch.from_numpy(np.asarray(tags[b].boxes, np.float32))
            object_mask[b, :n] = True
            for k, carried in enumerate(object_entities(tags[b], self.lexicon)):
                object_entity[b, k, list(carried)] = True
        return {
            "anchor_token": anchor_token,
            "anchor_entity": anchor_entity,
            "anchor_objects": anchor_objects,
            "object_instance": object_instance,
            "object_box": object_box,
            "object_entity": object_entity,
            "object_mask": object_mask,
        }
