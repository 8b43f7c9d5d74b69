"""The world's HDF5 file: layout, writing, and reading it as a record source.

Layout (N images of a split, S = image_size, M rows of a table):

    /                      attrs: format="ash-neuro-world", version, seed,
                                  world_config (JSON), vocabularies (JSON)
    /<split>/              train, val, test, compositional; attrs: n_images
        images             (N, S, S, 3) uint8 RGB
        instance_map       (N, S, S) uint8: 0 wall, 1 floor (stuff), 2 + k object k of the image
        class_map          (N, S, S) uint8: 0 wall, 1 floor, 2 + shape index (things)
        objects/           image int32, index uint8 (k: instance id 2 + k), shape, colour, size,
                           texture uint8 (vocabulary indices), box int16 (M, 4)
        captions/          image int32, text str, template uint8, program str
        vqa/               image int32, question str, answer uint8, family uint8, program str
        ve/                image int32, hypothesis str, label uint8, program str
        refexp/            image int32, text str, object uint8, box int16 (M, 4), family uint8,
                           program str
        nlvr/              image_a int32 (left), image_b int32 (right), text str, label uint8
                           (1 true), minimal_pair uint8, program str

Boxes are x0, y0, x1, y1 in pixels with x1, y1 exclusive, tight around the instance mask.
Categorical columns index the lists in `vocabularies`; `program` holds the JSON program that
computed the label (see `programs.py`). Strings are variable-length UTF-8.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ash_neuro.config import WorldConfig
from ash_neuro.data import render, scene
from ash_neuro.data.annotations.captions import CAPTION_TEMPLATES
from ash_neuro.data.annotations.entailment import VE_LABELS
from ash_neuro.data.annotations.questions import ANSWERS, VQA_FAMILIES
from ash_neuro.data.annotations.referring import REFEXP_FAMILIES
from ash_neuro.data.records import (
    CaptionRecord,
    EntailmentRecord,
    GroundingRecord,
    NLVRRecord,
    ObjectTags,
    VQARecord,
)
from ash_neuro.data.world import Chunk
from ash_neuro.errors import AshError

FORMAT = "ash-neuro-world"
# Bump whenever the same WorldConfig would produce different content: files written by another
# version are regenerated rather than reused. 2: the file records its tokenizer's fingerprint.
VERSION = 2
# Config fields that change how a world is made but not what it contains.
NON_CONTENT_FIELDS = ("path", "workers")
IMAGE_CHUNK = 64  # images per HDF5 chunk

_STR = h5py.string_dtype("utf-8")
_U8, _I16, _I32 = np.dtype(np.uint8), np.dtype(np.int16), np.dtype(np.int32)
# table -> column -> (dtype, per-row shape)
TABLES: dict[str, dict[str, tuple[np.dtype, tuple[int, ...]]]] = {
    "objects": {
        "image": (_I32, ()),
        "index": (_U8, ()),
        "shape": (_U8, ()),
        "colour": (_U8, ()),
        "size": (_U8, ()),
        "texture": (_U8, ()),
        "box": (_I16, (4,)),
    },
    "captions": {
        "image": (_I32, ()),
        "text": (_STR, ()),
        "template": (_U8, ()),
        "program": (_STR, ()),
    },
    "vqa": {
        "image": (_I32, ()),
        "question": (_STR, ()),
        "answer": (_U8, ()),
        "family": (_U8, ()),
        "program": (_STR, ()),
    },
    "ve": {
        "image": (_I32, ()),
        "hypothesis": (_STR, ()),
        "label": (_U8, ()),
        "program": (_STR, ()),
    },
    "refexp": {
        "image": (_I32, ()),
        "text": (_STR, ()),
        "object": (_U8, ()),
        "box": (_I16, (4,)),
        "family": (_U8, ()),
        "program": (_STR, ()),
    },
    "nlvr": {
        "image_a": (_I32, ()),
        "image_b": (_I32, ()),
        "text": (_STR, ()),
        "label": (_U8, ()),
        "minimal_pair": (_U8, ()),
        "program": (_STR, ()),
    },
}
TEXT_COLUMNS = {"captions": "text", "vqa": "question", "ve": "hypothesis", "refexp": "text",
                "nlvr": "text"}  # fmt: skip


class WorldFileError(AshError):
    """A world file is missing, unreadable, or not a world file."""


def vocabularies() -> dict[str, list]:
    return {
        "shapes": list(scene.SHAPES),
        "colours": list(scene.COLOURS),
        "sizes": list(scene.SIZES),
        "textures": list(scene.TEXTURES),
        "panoptic_classes": list(render.STUFF_CLASSES) + list(scene.SHAPES),
        "answers": list(ANSWERS),
        "vqa_families": list(VQA_FAMILIES),
        "ve_labels": list(VE_LABELS),
        "caption_templates": list(CAPTION_TEMPLATES),
        "refexp_families": list(REFEXP_FAMILIES),
        "held_out_pairs": [list(p) for p in scene.HELD_OUT_PAIRS],
    }


def content_config(cfg: WorldConfig) -> dict:
    """The config fields that determine a world's content (what reuse is keyed on)."""
    data = dataclasses.asdict(cfg)
    for name in NON_CONTENT_FIELDS:
        data.pop(name)
    return data


def split_sizes(cfg: WorldConfig) -> dict[str, int]:
    return {
        "train": cfg.n_train,
        "val": cfg.n_val,
        "test": cfg.n_test,
        "compositional": cfg.n_compositional,
    }


class WorldWriter:
    """Writes a world file chunk by chunk; tables are kept in memory and written on close."""

    def __init__(self, path: Path, cfg: WorldConfig) -> None:
        self.file = h5py.File(path, "w")
        self.file.attrs["format"] = FORMAT
        self.file.attrs["version"] = VERSION
        self.file.attrs["seed"] = cfg.seed
        self.file.attrs["world_config"] = json.dumps(content_config(cfg), sort_keys=True)
        self.file.attrs["vocabularies"] = json.dumps(vocabularies())
        self.tables: dict[str, dict[str, dict[str, list]]] = {}
        size = cfg.image_size
        for split, n in split_sizes(cfg).items():
            group = self.file.create_group(split)
            group.attrs["n_images"] = n
            for name, shape in (
                ("images", (n, size, size, 3)),
                ("instance_map", (n, size, size)),
                ("class_map", (n, size, size)),
            ):
                chunks = (min(n, IMAGE_CHUNK), *shape[1:]) if n else None
                group.create_dataset(
                    name,
                    shape=shape,
                    dtype=np.uint8,
                    chunks=chunks,
                    compression="lzf" if n else None,
                    track_times=False,
                )
            self.tables[split] = {t: {c: [] for c in cols} for t, cols in TABLES.items()}

    def write_chunk(self, chunk: Chunk) -> None:
        group = self.file[chunk.split]
        rows = slice(chunk.start, chunk.start + len(chunk.images))
        group["images"][rows] = chunk.images
        group["instance_map"][rows] = chunk.instance_maps
        group["class_map"][rows] = chunk.class_maps
        for table, columns in chunk.tables.items():
            for name, values in columns.items():
                self.tables[chunk.split][table][name].extend(values)

    def texts(self) -> list[str]:
        """Every sentence of every split (the tokenizer's training corpus)."""
        return [
            text
            for tables in self.tables.values()
            for table, column in TEXT_COLUMNS.items()
            for text in tables[table][column]
        ]

    def close(self) -> None:
        for split, tables in self.tables.items():
            for table, columns in tables.items():
                group = self.file[split].create_group(table)
                for name, (dtype, shape) in TABLES[table].items():
                    values = columns[name]
                    if dtype == _STR:
                        data = np.array(values, dtype=object)
                    else:
                        data = np.array(values, dtype=dtype).reshape(len(values), *shape)
                    group.create_dataset(name, data=data, dtype=dtype, track_times=False)
        self.file.close()


@dataclass(frozen=True)
class WorldInfo:
    version: int
    seed: int
    world_config: dict
    n_images: dict[str, int]
    tokenizer_fingerprint: str | None = None  # of the tokenizer beside it (`tokenizer.py`)

    @property
    def total_images(self) -> int:
        return sum(self.n_images.values())


def read_world_info(path: str | Path) -> WorldInfo:
    """The stored identity of a world file; WorldFileError if it is not a readable one."""
    path = Path(path)
    if not path.is_file():
        raise WorldFileError(f"world file {path} not found")
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise WorldFileError(f"{path} is an HDF5 file but not an ash-neuro world")
            return WorldInfo(
                version=int(f.attrs["version"]),
                seed=int(f.attrs["seed"]),
                world_config=json.loads(f.attrs["world_config"]),
                n_images={s: int(f[s].attrs["n_images"]) for s in scene.SPLITS},
                tokenizer_fingerprint=f.attrs.get("tokenizer_fingerprint"),
            )
    except WorldFileError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise WorldFileError(f"{path} is not a readable world file ({exc})") from None


def check_complete(path: str | Path) -> None:
    """Every split of the world file at `path` is complete (`_check_complete`)."""
    with h5py.File(path, "r") as f:
        for split in scene.SPLITS:
            _check_complete(Path(path), f[split], int(f[split].attrs["n_images"]))


def _check_complete(path: Path, group: h5py.Group, n_images: int) -> None:
    """Every per-image array holds `n_images` rows and every table's columns are equally
    long; a truncated or half-written file is a one-line error here, not a crash at the first
    validation."""
    for name in ("images", "instance_map", "class_map"):
        if name not in group or group[name].shape[0] != n_images:
            rows = group[name].shape[0] if name in group else 0
            raise WorldFileError(
                f"{path}: {group.name}/{name} holds {rows} of {n_images} images; the file is "
                "truncated: regenerate it with `python -m ash_neuro.data.generate --force`"
            )
    for table, columns in TABLES.items():
        lengths = {group[table][col].shape[0] for col in columns if col in group.get(table, {})}
        if table not in group or len(lengths) != 1 or len(group[table]) != len(columns):
            raise WorldFileError(
                f"{path}: table {group.name}/{table} is incomplete; the file is truncated: "
                "regenerate it with `python -m ash_neuro.data.generate --force`"
            )


class WorldSource:
    """One split of a world file as a `records.Source`.

    The h5py handle is opened lazily and per process (safe with DataLoader workers); images
    and panoptic maps are read into memory on first use (a 10k-image split at 64 px is 123 MB).
    """

    def __init__(self, path: str | Path, split: str) -> None:
        if split not in scene.SPLITS:
            raise AshError(f"unknown split {split!r}; choose one of {', '.join(scene.SPLITS)}")
        self.path, self.split = Path(path), split
        read_world_info(self.path)  # fail early, in one line, on a wrong path
        with h5py.File(self.path, "r") as f:
            vocab = json.loads(f.attrs["vocabularies"])
            self.n_images = int(f[split].attrs["n_images"])
            self.image_size = int(f[split]["images"].shape[1])
            _check_complete(self.path, f[split], self.n_images)
        self.answers: tuple[str, ...] = tuple(vocab["answers"])
        self.vqa_families: tuple[str, ...] = tuple(vocab["vqa_families"])
        self.vocabularies = vocab
        self._arrays: dict[str, np.ndarray] = {}
        self._tables: dict[str, dict[str, np.ndarray]] = {}

    def __getstate__(self) -> dict:
        # workers re-read lazily rather than receiving the arrays through a pipe
        return {**self.__dict__, "_arrays": {}, "_tables": {}}

    def __len__(self) -> int:
        return self.n_images

    def _array(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            with h5py.File(self.path, "r") as f:
                self._arrays[name] = f[self.split][name][...]
        return self._arrays[name]

    def table(self, name: str) -> dict[str, np.ndarray]:
        """All columns of a table (strings decoded)."""
        if name not in self._tables:
            with h5py.File(self.path, "r") as f:
                group = f[self.split][name]
                self._tables[name] = {
                    col: group[col].asstr()[...]
                    if TABLES[name][col][0] == _STR
                    else group[col][...]
                    for col in TABLES[name]
                }
        return self._tables[name]

    def image(self, index: int) -> np.ndarray:
        return self._array("images")[index]

    def images(self) -> np.ndarray:
        return self._array("images")

    def _object_rows(self, index: int) -> slice:
        image_col = self.table("objects")["image"]
        lo, hi = np.searchsorted(image_col, [index, index + 1])
        return slice(int(lo), int(hi))

    has_panoptic = True  # exact panoptic maps from the renderer's drawing order

    def panoptic(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        shapes = self.table("objects")["shape"][self._object_rows(index)]
        return self._array("instance_map")[index], render.FIRST_OBJECT + shapes.astype(np.int64)

    has_object_tags = True  # every object's shape and colour, from the scene

    def object_tags(self, index: int) -> ObjectTags:
        """Image `index`'s objects with their shape and colour names, panoptic instance ids
        (2 + k) and boxes."""
        objects, rows = self.table("objects"), self._object_rows(index)
        shapes, colours = self.vocabularies["shapes"], self.vocabularies["colours"]
        names = tuple(
            (shapes[s], colours[c]) for s, c in zip(objects["shape"][rows], objects["colour"][rows])
        )
        instances = render.FIRST_OBJECT + objects["index"][rows].astype(np.int64)
        boxes = objects["box"][rows].astype(np.float32) / np.float32(self.image_size)
        return ObjectTags(names, instances, boxes)

    def captions(self) -> Sequence[CaptionRecord]:
        t = self.table("captions")
        return [CaptionRecord(int(i), s) for i, s in zip(t["image"], t["text"])]

    def vqa(self) -> Sequence[VQARecord]:
        t = self.table("vqa")
        return [
            VQARecord(int(i), q, int(a), int(f), {int(a): 1.0})
            for i, q, a, f in zip(t["image"], t["question"], t["answer"], t["family"])
        ]

    def entailment(self) -> Sequence[EntailmentRecord]:
        t = self.table("ve")
        return [
            EntailmentRecord(int(i), h, int(y))
            for i, h, y in zip(t["image"], t["hypothesis"], t["label"])
        ]

    def grounding(self) -> Sequence[GroundingRecord]:
        t, objects = self.table("refexp"), self.table("objects")
        scale = np.float32(self.image_size)
        out = []
        for i, text, k in zip(t["image"], t["text"], t["object"]):
            boxes = objects["box"][self._object_rows(int(i))].astype(np.float32) / scale
            out.append(GroundingRecord(int(i), text, int(k), boxes))
        return out

    def nlvr(self) -> Sequence[NLVRRecord]:
        t = self.table("nlvr")
        return [
            NLVRRecord(int(a), int(b), s, int(y))
            for a, b, s, y in zip(t["image_a"], t["image_b"], t["text"], t["label"])
        ]
