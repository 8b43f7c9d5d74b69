"""COCO's instances JSON (`instances_train2014.json`, ...): each image's instance boxes and
their category names, read by the readers that need them (RefCOCO's candidates; object tags
for CMAL's anchor points on COCO captions and RefCOCO).

Format: {"images": [{"id", "file_name", "width", "height"}, ...], "annotations": [{"id",
"image_id", "bbox": [x, y, w, h] in pixels, "category_id"}, ...], "categories": [{"id",
"name"}, ...]}. Boxes are checked only for the images a reader uses (instances.json holds
hundreds of thousands); an annotation whose category is not in categories[] keeps its box but
carries no name (it is never an anchor).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ash_neuro.data.readers.common import ReadOptions, json_list, map_boxes, read_json, short
from ash_neuro.data.records import ObjectTags

INSTANCES_WHAT = "COCO instances JSON (an object with images[] and annotations[] of bbox)"


class ImageInstances:
    """One image of instances.json: file, size and its instance boxes (checked on first use)."""

    def __init__(self, file_name: str, width: int, height: int) -> None:
        self.file_name, self.width, self.height = file_name, width, height
        self.rows: list[int] = []  # rows of its annotations in instances.json
        self.ann_ids: list[int] = []
        self.boxes: np.ndarray | None = None  # (n, 4) normalised, once checked
        self.names: tuple[tuple[str, ...], ...] = ()  # category name per box, once checked


class InstanceIndex:
    """COCO instances.json indexed by image; boxes are checked only for images readers use."""

    def __init__(self, path: Path, options: ReadOptions) -> None:
        self.path, self.options = path, options
        data = read_json(path, INSTANCES_WHAT)
        self.images: dict[int, ImageInstances] = {}
        # an unusable images[] entry shows when a ref needs it, as having no valid entry
        for entry in json_list(data, "images", path, INSTANCES_WHAT):
            if not isinstance(entry, dict):
                continue
            id_, name = entry.get("id"), entry.get("file_name")
            width, height = entry.get("width"), entry.get("height")
            sized = isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0
            if isinstance(id_, int) and isinstance(name, str) and name and sized:
                self.images[id_] = ImageInstances(name, width, height)
        self.by_file_name = {image.file_name: id_ for id_, image in self.images.items()}
        self.annotations = json_list(data, "annotations", path, INSTANCES_WHAT)
        for row, annotation in enumerate(self.annotations):
            if isinstance(annotation, dict) and annotation.get("image_id") in self.images:
                image = self.images[annotation["image_id"]]
                image.rows.append(row)
                image.ann_ids.append(annotation.get("id"))
        categories = data.get("categories") if isinstance(data, dict) else None
        self.categories: dict[int, str] = {
            entry["id"]: entry["name"].strip().lower()
            for entry in categories or []
            if isinstance(entry, dict)
            and isinstance(entry.get("id"), int)
            and isinstance(entry.get("name"), str)
        }

    def candidates(self, image_id: int) -> ImageInstances | str:
        """The image with its boxes normalised (and mapped by the transform) and their category
        names, or what is wrong."""
        image = self.images.get(image_id)
        if image is None:
            return f"image_id {image_id} has no valid entry in {self.path} images[]"
        if image.boxes is None:
            boxes, names = [], []
            for row in image.rows:
                annotation = self.annotations[row]
                box = annotation.get("bbox")
                valid = isinstance(annotation.get("id"), int) and isinstance(box, list)
                if not valid or len(box) != 4 or not all(isinstance(v, int | float) for v in box):
                    return (
                        f"{self.path} annotations[{row}]: needs an integer `id` and `bbox` "
                        f"[x, y, w, h], got {short(box)}"
                    )
                x, y, w, h = box
                boxes.append([x, y, x + w, y + h])
                name = self.categories.get(annotation.get("category_id"))
                names.append((name,) if name else ())
            scale = np.array([image.width, image.height] * 2, np.float32)
            normalised = np.clip(np.array(boxes, np.float32).reshape(-1, 4) / scale, 0.0, 1.0)
            image.boxes = map_boxes(normalised, image.width, image.height, self.options)
            image.names = tuple(names)
        return image


def object_tags(image: ImageInstances) -> ObjectTags:
    """The checked instances of an image (`InstanceIndex.candidates`) as object tags: category
    names and boxes, located by box only (no panoptic map)."""
    count = len(image.names)
    return ObjectTags(image.names, np.full(count, -1, np.int64), image.boxes.reshape(count, 4))
