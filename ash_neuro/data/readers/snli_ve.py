"""SNLI-VE (visual entailment over Flickr30k images), one JSON object per line.

    {"Flickr30K_ID": "3416050480", "sentence2": "A dog runs.", "gold_label": "neutral", ...}

The image is `<images>/<Flickr30K_ID>.jpg` (the key is also accepted as "Flickr30k_ID", the
id as a number); sentence2 is the hypothesis; gold_label is entailment, neutral or
contradiction (EntailmentRecord labels 0, 1, 2).

Layout under root (override with annotations= and images=): snli_ve_<split>.jsonl, images in
root/flickr30k_images. Splits: train, dev (also "val"), test.
"""

from __future__ import annotations

from pathlib import Path

from ash_neuro.data.readers.common import (
    FileSource,
    ReadOptions,
    short,
    split_name,
)
from ash_neuro.data.records import EntailmentRecord

SPLITS = {"train": "train", "dev": "dev", "val": "dev", "test": "test"}
LABELS = {"entailment": 0, "neutral": 1, "contradiction": 2}
ID_KEYS = ("Flickr30K_ID", "Flickr30k_ID")
WHAT = "SNLI-VE JSON lines (one object per line with Flickr30K_ID, sentence2, gold_label)"


class SNLIVE(FileSource):
    kind = "snli_ve"

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
        path = self.path(annotations, f"snli_ve_{name}.jsonl")
        image_dir = self.path(images, "flickr30k_images")
        for where, record in self.jsonl(path, WHAT):
            key = next((k for k in ID_KEYS if k in record), ID_KEYS[0])
            got = self.fields(record, where, **{key: (str, int)}, sentence2=str)
            if got is None:
                continue
            image_id, hypothesis = got
            label = LABELS.get(record.get("gold_label"))
            if label is None:
                detail = f"`gold_label` is {short(record.get('gold_label'))}, not one of "
                self.report("malformed", where, detail + ", ".join(LABELS))
                continue
            image_path = image_dir / f"{str(image_id).strip()}.jpg"
            if (found := self.image_indices([image_path], where)) is None:
                continue
            self._entailment.append(EntailmentRecord(found[0], hypothesis.strip(), label))
