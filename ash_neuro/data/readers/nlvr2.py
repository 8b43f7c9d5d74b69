"""NLVR2 (lil.nlp.cornell.edu/nlvr): statements over image pairs, one JSON object per line.

    {"identifier": "dev-850-0-3", "sentence": "The left image contains two dogs.",
     "label": "True", "directory": "12" (train only), "left_url": ..., "right_url": ...}

Images follow the official repository's naming: identifier `<split>-<set>-<pair>-<sentence>`
shows `<split>-<set>-<pair>-img0.png` (left) and `...-img1.png` (right), found at
`<images>/<split>/<directory>/<name>` (`<images>/<split>/<name>` without a directory). Explicit
`left_url` / `right_url` fields that are local paths (relative to `<images>`, or absolute)
replace the derived names; web URLs, as in the official files, are ignored (nothing is
downloaded). `label` is "True" / "False" (JSON booleans are accepted too).

Layout under root (override with annotations= and images=): <split>.json (the official
`data/train.json`, `dev.json`, `test1.json`; JSON lines despite the suffix), images in
root/images/<split>. Splits: train, dev (also "val"), test1 (also "test"), test2.
"""

from __future__ import annotations

from pathlib import Path

from ash_neuro.data.readers.common import (
    FileSource,
    ReadOptions,
    short,
    split_name,
)
from ash_neuro.data.records import NLVRRecord

SPLITS = {
    "train": "train",
    "dev": "dev",
    "val": "dev",
    "test1": "test1",
    "test": "test1",
    "test2": "test2",
}
LABELS = {"true": 1, "false": 0}
WHAT = "NLVR2 JSON lines (one object per line with identifier, sentence, label)"


def pair_images(identifier: str) -> tuple[str, str] | None:
    """The left and right image names of an identifier, None if it is not `a-b-c-d`."""
    parts = identifier.split("-")
    if len(parts) != 4 or not all(parts):
        return None
    pair = "-".join(parts[:3])
    return f"{pair}-img0.png", f"{pair}-img1.png"


def local_path(value) -> str | None:
    """An explicit image field that names a local file (not a web URL), else None."""
    return value if isinstance(value, str) and value.strip() and "://" not in value else None


def parse_label(value) -> int | None:
    if isinstance(value, bool):
        return int(value)
    return LABELS.get(value.lower()) if isinstance(value, str) else None


class NLVR2(FileSource):
    kind = "nlvr2"

    def __init__(
        self,
        root: str | Path,
        split: str,
        options: ReadOptions,
        *,
        annotations: str | Path | None = None,
        images: str | Path | None = None,
    ) -> None:
        super().__init__(root, split, options)
        name = split_name(self.kind, split, SPLITS)
        path = self.path(annotations, f"{name}.json")
        image_dir = self.path(images, "images")
        for where, record in self.jsonl(path, WHAT):
            got = self.fields(record, where, identifier=str, sentence=str)
            if got is None:
                continue
            identifier, text = got
            label = parse_label(record.get("label"))
            if label is None:
                detail = f"`label` is {short(record.get('label'))}, not 'True' or 'False'"
                self.report("malformed", where, detail)
                continue
            derived = pair_images(identifier)
            if derived is None:
                detail = f"identifier {identifier!r} is not <split>-<set>-<pair>-<sentence>"
                self.report("malformed", where, detail)
                continue
            folder = image_dir / name / str(record.get("directory") or "")
            paths = [
                image_dir / local if (local := local_path(record.get(key))) else folder / default
                for key, default in zip(("left_url", "right_url"), derived)
            ]
            if (found := self.image_indices(paths, where)) is None:
                continue
            self._nlvr.append(NLVRRecord(found[0], found[1], text.strip(), label))
