"""What every real-data reader shares: options, image loading, problem reports, the source base.

A reader checks every record when it opens (fields, labels, answers, that the image files
exist) and keeps the good ones; a bad record is either skipped and counted or stops the
reader with one line, as `on_error` says. Images are decoded lazily, one per `image(index)`
call, with PIL, and brought to `image_size` by the configured transform.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ash_neuro.data.records import (
    CaptionRecord,
    EntailmentRecord,
    GroundingRecord,
    NLVRRecord,
    ObjectTags,
    VQARecord,
)
from ash_neuro.errors import AshError

ON_ERROR = ("skip", "stop")
TRANSFORMS = ("resize", "letterbox")
MAX_MESSAGES = 20  # problem messages kept for the summary; the counts cover every one


class ReaderError(AshError):
    """A data set file is missing, unreadable or (with on_error="stop") holds a bad record."""


@dataclass(frozen=True)
class ReadOptions:
    """Options every reader takes.

    image_size: side of the square uint8 images served (the model's image size).
    transform: "resize" stretches each image to image_size x image_size; "letterbox" scales
      it to fit, keeping its aspect ratio, and pads with black (boxes are mapped to match).
    on_error: "skip" drops a bad record and counts it; "stop" raises a one-line ReaderError.
    check_images: look for every image file when opening (a missing one is a bad record);
      without it a missing file only shows when the item is read.
    """

    image_size: int
    transform: str = "resize"
    on_error: str = "skip"
    check_images: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.image_size, int) or self.image_size < 1:
            raise ReaderError(f"image_size={self.image_size!r}: give a positive integer")
        if self.transform not in TRANSFORMS:
            raise ReaderError(
                f"transform={self.transform!r}: choose one of {', '.join(TRANSFORMS)}"
            )
        if self.on_error not in ON_ERROR:
            raise ReaderError(f"on_error={self.on_error!r}: choose one of {', '.join(ON_ERROR)}")


def fitted_size(width: int, height: int, options: ReadOptions) -> tuple[int, int, int, int]:
    """(new width, new height, left offset, top offset) of an image inside the square."""
    size = options.image_size
    if options.transform == "resize":
        return size, size, 0, 0
    scale = size / max(width, height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    return new_w, new_h, (size - new_w) // 2, (size - new_h) // 2


def map_boxes(boxes: np.ndarray, width: int, height: int, options: ReadOptions) -> np.ndarray:
    """(n, 4) boxes normalised to the original image -> normalised to the transformed one."""
    new_w, new_h, left, top = fitted_size(width, height, options)
    size = options.image_size
    scale = np.array([new_w, new_h, new_w, new_h], np.float32) / size
    offset = np.array([left, top, left, top], np.float32) / size
    return (boxes * scale + offset).astype(np.float32)


def load_image(path: Path, options: ReadOptions) -> np.ndarray:
    """(image_size, image_size, 3) uint8 RGB; ReaderError naming the file if it cannot be read."""
    size = options.image_size
    try:
        with Image.open(path) as img:
            # JPEG only: decode at the smallest power-of-two reduction still >= the target size
            img.draft("RGB", (size, size))
            img = img.convert("RGB")
            new_w, new_h, left, top = fitted_size(img.width, img.height, options)
            img = img.resize((new_w, new_h), Image.Resampling.BICUBIC)
    except FileNotFoundError:
        raise ReaderError(f"image {path} not found") from None
    except OSError as exc:
        raise ReaderError(f"cannot read image {path} ({exc})") from None
    if (new_w, new_h) == (size, size):
        return np.asarray(img, dtype=np.uint8)
    canvas = np.zeros((size, size, 3), np.uint8)
    canvas[top : top + new_h, left : left + new_w] = np.asarray(img, dtype=np.uint8)
    return canvas


def require_file(path: Path, what: str) -> Path:
    """`path` if it is a file, else a ReaderError naming it and what it should hold."""
    if not path.is_file():
        raise ReaderError(f"{path} not found; it should be {what}")
    return path


def read_json(path: Path, what: str):
    """A whole JSON file (one-line errors: missing file, invalid JSON with its line)."""
    require_file(path, what)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise ReaderError(
            f"{path}:{exc.lineno}: not valid JSON at column {exc.colno} ({exc.msg}); "
            f"it should be {what}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReaderError(f"cannot read {path} ({exc})") from None


def json_list(data, key: str, path: Path, what: str) -> list:
    """`data[key]` if `data` is an object holding a list there, else a one-line ReaderError."""
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise ReaderError(
            f"{path}: expected a JSON object with a list `{key}`; it should be {what}"
        )
    return data[key]


def split_name(kind: str, split: str, names: dict[str, str]) -> str:
    """The format's own name of `split` (e.g. "val" -> "dev"), or a one-line ReaderError."""
    if split not in names:
        raise ReaderError(f"{kind} has no split {split!r}; choose one of {', '.join(names)}")
    return names[split]


def short(value, limit: int = 60) -> str:
    """A value's repr on one line, cut to `limit` characters (for messages)."""
    text = repr(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


class FileSource:
    """A `records.Source` over image files: readers add images and records while they open.

    Image indices number the images that kept records use, in order of first use.
    """

    kind = ""

    def __init__(self, root: str | Path, split: str, options: ReadOptions) -> None:
        self.root, self.split, self.options = Path(root), split, options
        self.answers: tuple[str, ...] = ()
        self.vqa_families: tuple[str, ...] = ()
        self.image_paths: list[Path] = []
        self._index: dict[Path, int] = {}
        self.skipped: Counter[str] = Counter()  # skipped records by reason
        self.problems: list[str] = []  # the first MAX_MESSAGES skip messages
        self._captions: list[CaptionRecord] = []
        self._vqa: list[VQARecord] = []
        self._entailment: list[EntailmentRecord] = []
        self._grounding: list[GroundingRecord] = []
        self._nlvr: list[NLVRRecord] = []
        self._object_tags: dict[int, ObjectTags] = {}  # by image index, where tagged

    # -- for readers -------------------------------------------------------------------------

    def path(self, given: str | Path | None, default: str) -> Path:
        """A path option: `given` (relative to root unless absolute), or root / `default`."""
        return self.root / (default if given is None or given == "" else given)

    def report(self, reason: str, where: str, detail: str) -> None:
        """A bad record: `reason` is its count's key ("missing image", "malformed", "unknown
        answer"), `where` the file and line (`path:line`) or record (`path key[i]`)."""
        message = f"{where}: {detail}"
        if self.options.on_error == "stop":
            raise ReaderError(f"{message} (on_error='skip' skips such records)")
        self.skipped[reason] += 1
        if len(self.problems) < MAX_MESSAGES:
            self.problems.append(message)

    def fields(self, record, where: str, **expected: type | tuple[type, ...]) -> tuple | None:
        """The values of the `expected` keys of a JSON object, in order, if each has its type
        (strings non-blank); else None after reporting the record's first problem."""
        if not isinstance(record, dict):
            self.report("malformed", where, "not a JSON object")
            return None
        values = []
        for key, kind in expected.items():
            value = record.get(key)
            valid = isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)
            if not valid or (isinstance(value, str) and not value.strip()):
                detail = f"`{key}` is {short(value)}" if key in record else f"missing `{key}`"
                self.report("malformed", where, detail)
                return None
            values.append(value)
        return tuple(values)

    def sentences(self, sentences: list, key: str, where: str) -> list[str]:
        """The `key` strings of a `sentences` list of objects (stripped); bad ones reported."""
        texts = []
        for k, sentence in enumerate(sentences):
            got = self.fields(sentence, f"{where}.sentences[{k}]", **{key: str})
            if got is not None:
                texts.append(got[0].strip())
        return texts

    def jsonl(self, path: Path, what: str) -> Iterator[tuple[str, dict]]:
        """(where, record) for each non-blank line of a JSON-lines file; a line that is not a
        JSON object is reported as a malformed record."""
        require_file(path, what)
        with open(path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                where = f"{path}:{number}"
                try:
                    line = raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError:
                    self.report("malformed", where, "not UTF-8 text")
                    continue
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    detail = f"not valid JSON at column {exc.colno} ({exc.msg})"
                    self.report("malformed", where, detail)
                    continue
                if not isinstance(record, dict):
                    self.report("malformed", where, "not a JSON object")
                    continue
                yield where, record

    def image_indices(self, paths: Sequence[Path], where: str) -> list[int] | None:
        """Indices of the images of one record, added on first use; None (reported as a missing
        image) if any file is missing and images are checked."""
        for path in paths:
            if path not in self._index and self.options.check_images and not path.is_file():
                self.report("missing image", where, f"image {path} not found")
                return None
        out = []
        for path in paths:
            if path not in self._index:
                self._index[path] = len(self.image_paths)
                self.image_paths.append(path)
            out.append(self._index[path])
        return out

    # -- the Source interface ----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.image_paths)

    def image(self, index: int) -> np.ndarray:
        return load_image(self.image_paths[index], self.options)

    def images(self) -> np.ndarray:
        size = self.options.image_size
        out = np.empty((len(self), size, size, 3), np.uint8)
        for index in range(len(self)):
            out[index] = self.image(index)
        return out

    has_panoptic = False  # real formats carry no panoptic maps here (GSHN segments by k-means)

    def panoptic(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        raise ReaderError(f"{self.kind} has no panoptic maps; build the dataset without panoptic")

    has_object_tags = False  # True in a reader that tags objects (COCO instances.json)

    def object_tags(self, index: int) -> ObjectTags:
        """Image `index`'s tagged objects (none for an image its annotations do not list)."""
        if not self.has_object_tags:
            raise ReaderError(f"{self.kind} has no object tags here; anchors fall back to words")
        empty = ObjectTags((), np.zeros(0, np.int64), np.zeros((0, 4), np.float32))
        return self._object_tags.get(index, empty)

    def captions(self) -> Sequence[CaptionRecord]:
        return self._captions

    def vqa(self) -> Sequence[VQARecord]:
        return self._vqa

    def entailment(self) -> Sequence[EntailmentRecord]:
        return self._entailment

    def grounding(self) -> Sequence[GroundingRecord]:
        return self._grounding

    def nlvr(self) -> Sequence[NLVRRecord]:
        return self._nlvr

    # -- reports -----------------------------------------------------------------------------

    def n_records(self) -> int:
        tables = (self._captions, self._vqa, self._entailment, self._grounding, self._nlvr)
        return sum(len(t) for t in tables)

    def summary(self) -> str:
        """One line: what was read, and what was skipped with the first reason."""
        head = f"{self.kind} {self.split}: {self.n_records():,} records over {len(self):,} images"
        total = sum(self.skipped.values())
        if not total:
            return f"{head}; nothing skipped"
        counts = ", ".join(f"{reason} {n:,}" for reason, n in sorted(self.skipped.items()))
        return f"{head}; skipped {total:,} ({counts}); first: {self.problems[0]}"

    def texts(self) -> list[str]:
        """Every sentence of the source (e.g. to fit a tokenizer to a real data set)."""
        return [
            *(r.text for r in self._captions),
            *(r.question for r in self._vqa),
            *(r.hypothesis for r in self._entailment),
            *(r.text for r in self._grounding),
            *(r.text for r in self._nlvr),
        ]
