"""COCO and Flickr30k captions in Karpathy's split files (`dataset_coco.json`,
`dataset_flickr30k.json`), the standard image-text retrieval splits.

Format: {"images": [{"filepath": "val2014" (COCO only), "filename": "COCO_val2014_...jpg",
"split": "train" | "restval" | "val" | "test", "sentences": [{"raw": "A man riding ..."},
...]}, ...]}. One CaptionRecord per sentence (its `raw` text). The image lies at
`<images>/<filepath>/<filename>` (`<images>/<filename>` without a filepath).

Layout under root (override with annotations= and images=):
    coco:       dataset_coco.json, images under root (root/train2014, root/val2014)
    flickr30k:  dataset_flickr30k.json, images in root/flickr30k-images
Split "train" includes "restval" (COCO's 113k-image training set) unless restval=False.

Object tags (CMAL's anchor points): with `instances=` (COCO's instances JSON; several files
comma-separated, e.g. `instances_train2014.json,instances_val2014.json`, since the Karpathy
splits draw on both), each image's instances with their category names and boxes, matched by
file name; an image the files do not list has no tagged object. Without it (Flickr30k has no
such file) the source has no tags and anchors fall back to words (`ash_neuro/data/anchors.py`).
"""

from __future__ import annotations

from pathlib import Path

from ash_neuro.data.readers.coco_instances import InstanceIndex, object_tags
from ash_neuro.data.readers.common import (
    FileSource,
    ReadOptions,
    json_list,
    read_json,
    split_name,
)
from ash_neuro.data.records import CaptionRecord, ObjectTags

SPLITS = {"train": "train", "restval": "restval", "val": "val", "test": "test"}
WHAT = "Karpathy's caption split file (an object with images[] of filename, split, sentences[])"


class KarpathyCaptions(FileSource):
    kind = ""
    default_annotations = ""
    default_images = ""

    def __init__(
        self,
        root: str | Path,
        split: str,
        options: ReadOptions,
        *,
        annotations: str | Path | None = None,
        images: str | Path | None = None,
        restval: bool = True,
        instances: str | None = None,
    ) -> None:
        super().__init__(root, split, options)
        indices = [
            InstanceIndex(self.path(part.strip(), ""), options)
            for part in (instances or "").split(",")
            if part.strip()
        ]
        self.has_object_tags = bool(indices)
        wanted = {split_name(self.kind, split, SPLITS)}
        if split == "train" and restval:
            wanted.add("restval")
        path = self.path(annotations, self.default_annotations)
        image_dir = self.path(images, self.default_images)
        entries = json_list(read_json(path, WHAT), "images", path, WHAT)
        for row, entry in enumerate(entries):
            where = f"{path} images[{row}]"
            got = self.fields(entry, where, split=str)
            if got is None or got[0] not in wanted:
                continue
            got = self.fields(entry, where, filename=str, sentences=list)
            if got is None:
                continue
            filename, sentences = got
            texts = self.sentences(sentences, "raw", where)
            folder = entry.get("filepath")  # COCO only
            image_path = image_dir / (folder if isinstance(folder, str) else "") / filename
            tags = self._tags(indices, filename, where)
            if tags is False or not texts:
                continue
            if (found := self.image_indices([image_path], where)) is None:
                continue
            self._captions.extend(CaptionRecord(found[0], text) for text in texts)
            if tags is not None:
                self._object_tags[found[0]] = tags

    def _tags(
        self, indices: list[InstanceIndex], filename: str, where: str
    ) -> ObjectTags | None | bool:
        """The image's tagged instances from the first index that lists it; None if none
        does; False (reported) if its annotations are malformed."""
        for index in indices:
            if filename in index.by_file_name:
                tagged = index.candidates(index.by_file_name[filename])
                if isinstance(tagged, str):
                    self.report("malformed", where, tagged)
                    return False
                return object_tags(tagged)
        return None


class CocoKarpathy(KarpathyCaptions):
    kind = "coco"
    default_annotations = "dataset_coco.json"
    default_images = "."


class Flickr30kKarpathy(KarpathyCaptions):
    kind = "flickr30k"
    default_annotations = "dataset_flickr30k.json"
    default_images = "flickr30k-images"
