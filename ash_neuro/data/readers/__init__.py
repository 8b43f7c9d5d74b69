"""Readers for the real data sets' own file formats, each returning a `records.Source`.

`open_dataset_source(kind, root, split, image_size=..., **options)` is the one entry point; the
task datasets (`datasets.py`) take its result in place of a world path, unchanged:

    source = open_dataset_source("vqa_v2", "/data/vqa", "val", image_size=64)
    print(source.summary())   # records, images, what was skipped and why (first message)
    dataset = VQADataset(source, tokenizer=tokenizer, max_len=32)

    kind        task(s)      module      what root holds by default
    world       all          world_file  root is the world file (data/world.h5)
    coco        retrieval    karpathy    dataset_coco.json, train2014/, val2014/
    flickr30k   retrieval    karpathy    dataset_flickr30k.json, flickr30k-images/
    vqa_v2      vqa          vqa_v2      v2_OpenEnded_mscoco_<sub>_questions.json,
                                         v2_mscoco_<sub>_annotations.json, <sub>/
    nlvr2       nlvr         nlvr2       <split>.json (JSON lines), images/<split>/
    snli_ve     ve           snli_ve     snli_ve_<split>.jsonl, flickr30k_images/
    refcoco     grounding    refcoco     refs(unc).json (converted from the pickle: see
    refcoco+                             refcoco.py), instances.json, train2014/
    refcocog                             (refcocog: refs(umd).json)

Options (a `data:` config section would hold the same names):

    image_size: int           the model's image size (required except for world, where it
                              must match the world's)
    transform: str = resize   resize (stretch to a square) | letterbox (fit, pad with black)
    on_error: str = skip      skip (drop and count a bad record) | stop (one-line error)
    check_images: bool = True look for every image file when opening
    annotations: path         the main annotation file (Karpathy JSON, VQA annotations,
                              NLVR2 / SNLI-VE JSON lines, RefCOCO refs JSON)
    images: path              the image folder
    questions: path           vqa_v2: the questions file
    answers: path             vqa_v2: answer list (JSON list or one per line)
    top_k: int = 3129         vqa_v2: vocabulary size when there is no answer list
    vocab_annotations: path   vqa_v2: annotations counted for top_k (default: train's)
    instances: path           refcoco*: COCO instances.json
    restval: bool = True      coco/flickr30k: split train includes restval

Relative paths are taken from root. An option left unset (None, "" or 0) means the format's
default and is accepted by every kind, so one config section serves them all; a set option
that the kind does not take is an error.

Problems: a missing or unreadable annotation file stops with one line naming it and what it
should hold. A bad record (missing image, malformed record, unknown VQA answer) is reported
with its file and line (JSON lines) or record index (JSON): with on_error="skip" it is
dropped and counted in `source.skipped` (by reason), `source.problems` (the first messages)
and `source.summary()`; with on_error="stop" it raises a one-line ReaderError. An image file
that exists but cannot be decoded raises when the item is read.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from ash_neuro.data.readers.common import FileSource, ReaderError, ReadOptions
from ash_neuro.data.readers.karpathy import CocoKarpathy, Flickr30kKarpathy
from ash_neuro.data.readers.nlvr2 import NLVR2
from ash_neuro.data.readers.refcoco import RefCOCO, RefCOCOg, RefCOCOPlus
from ash_neuro.data.readers.snli_ve import SNLIVE
from ash_neuro.data.readers.vqa_v2 import VQAv2
from ash_neuro.data.world_file import WorldSource

READERS: dict[str, type[FileSource]] = {
    reader.kind: reader
    for reader in (
        CocoKarpathy,
        Flickr30kKarpathy,
        VQAv2,
        NLVR2,
        SNLIVE,
        RefCOCO,
        RefCOCOPlus,
        RefCOCOg,
    )
}
KINDS = ("world", *READERS)

__all__ = ["KINDS", "READERS", "FileSource", "ReadOptions", "ReaderError", "open_dataset_source"]


def is_unset(value) -> bool:
    return value is None or value == "" or (type(value) is int and value == 0)


def reader_options(reader: type[FileSource]) -> tuple[str, ...]:
    """The format options (keyword-only arguments) a reader takes."""
    parameters = inspect.signature(reader.__init__).parameters.values()
    return tuple(p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY)


def open_dataset_source(
    kind: str,
    root: str | Path,
    split: str,
    *,
    image_size: int | None = None,
    transform: str = "resize",
    on_error: str = "skip",
    check_images: bool = True,
    **options,
) -> WorldSource | FileSource:
    """One split of a data set in its own format (`kind`: see the module docstring); either
    way a `records.Source`, which every task dataset takes."""
    given = {name: value for name, value in options.items() if not is_unset(value)}
    if kind == "world":
        if given:
            raise ReaderError(f"kind world takes no options; got {', '.join(given)}")
        source = WorldSource(root, split)
        if image_size is not None and image_size != source.image_size:
            raise ReaderError(
                f"{root} holds {source.image_size} px images, not image_size={image_size}; "
                "regenerate the world or change the image size"
            )
        return source
    if kind not in READERS:
        raise ReaderError(f"unknown data set kind {kind!r}; choose one of {', '.join(KINDS)}")
    reader = READERS[kind]
    allowed = reader_options(reader)
    unknown = [name for name in given if name not in allowed]
    if unknown:
        raise ReaderError(
            f"{kind} does not take option {unknown[0]!r}; it takes {', '.join(allowed)}"
        )
    if image_size is None:
        raise ReaderError(f"{kind}: give image_size (the model's image size)")
    read = ReadOptions(image_size, transform, on_error, check_images)
    return reader(Path(root), split, read, **given)
