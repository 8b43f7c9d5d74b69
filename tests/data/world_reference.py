"""An independent reading of a world file for the tests: objects come from the pixels.

Each image's objects are rebuilt from its instance map (their extent, hence their centre) and
the objects table (their attributes); the annotation programs are then evaluated here with
numpy masks and set logic, separately from `ash_neuro.data.programs`, so that a label can
only pass if two implementations of its meaning agree with the pixels.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import h5py
import numpy as np

from ash_neuro.data.programs import RELATION_MARGIN
from ash_neuro.data.scene import SPLITS

SIZE_RANK = {"small": 0, "medium": 1, "large": 2}


@dataclass(frozen=True)
class PixelObject:
    instance: int  # id in the instance map
    attrs: dict[str, str]
    box: tuple[int, int, int, int]  # from the mask, x1/y1 exclusive

    @property
    def centre(self) -> np.ndarray:
        x0, y0, x1, y1 = self.box
        return np.array([(x0 + x1) / 2, (y0 + y1) / 2])


@dataclass
class ReferenceImage:
    objects: list[PixelObject]
    size: int

    @property
    def margin(self) -> float:
        return RELATION_MARGIN * self.size

    def matching(self, filt: dict) -> set[int]:
        return {
            k for k, o in enumerate(self.objects) if all(o.attrs[a] == v for a, v in filt.items())
        }

    def offset(self, rel: str, i: int, j: int) -> float:
        """Signed distance of i from j along rel (positive: i is rel of j)."""
        d = self.objects[i].centre - self.objects[j].centre
        axis, sign = {"left": (0, -1), "right": (0, 1), "above": (1, -1), "below": (1, 1)}[rel]
        return float(sign * d[axis])


class ReferenceWorld:
    def __init__(self, path, split: str) -> None:
        with h5py.File(path, "r") as f:
            vocab = json.loads(f.attrs["vocabularies"])
            g = f[split]
            self.instance_map = g["instance_map"][...]
            self.class_map = g["class_map"][...]
            self.images = g["images"][...]
            self.objects_table = {k: g["objects"][k][...] for k in g["objects"]}
            self.tables = {
                name: {
                    col: (ds.asstr()[...] if ds.dtype.kind == "O" else ds[...])
                    for col, ds in g[name].items()
                }
                for name in ("captions", "vqa", "ve", "refexp", "nlvr")
            }
        self.vocab = vocab
        self.size = self.images.shape[1]
        self.scenes = [self._scene(i) for i in range(len(self.images))]

    def _scene(self, index: int) -> ReferenceImage:
        t = self.objects_table
        objects = []
        for row in np.flatnonzero(t["image"] == index):
            instance = 2 + int(t["index"][row])
            ys, xs = np.nonzero(self.instance_map[index] == instance)
            box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
            attrs = {
                "shape": self.vocab["shapes"][t["shape"][row]],
                "colour": self.vocab["colours"][t["colour"][row]],
                "size": self.vocab["sizes"][t["size"][row]],
                "texture": self.vocab["textures"][t["texture"][row]],
            }
            objects.append(PixelObject(instance, attrs, box))
        return ReferenceImage(objects, self.size)

    def rows(self, table: str):
        columns = self.tables[table]
        n = len(next(iter(columns.values())))
        for r in range(n):
            yield {k: v[r] for k, v in columns.items()}


@functools.cache
def reference(path, split: str) -> ReferenceWorld:
    """One split of a world file, read once for all the tests that check it."""
    return ReferenceWorld(path, split)


def worlds(path) -> list[ReferenceWorld]:
    return [reference(path, split) for split in SPLITS]


def resolve(scene: ReferenceImage, ref: dict) -> set[int] | None:
    found = scene.matching(ref["filter"])
    if "rel" in ref:
        anchor = scene.matching(ref["anchor"])
        if len(anchor) != 1:
            return None
        (a,) = anchor
        found.discard(a)
        offsets = {i: scene.offset(ref["rel"], i, a) for i in found}
        if any(abs(d) <= scene.margin for d in offsets.values()):
            return None
        return {i for i, d in offsets.items() if d > scene.margin}
    if "superlative" in ref:
        if len(found) < 2:
            return None
        axis, sign = {"leftmost": (0, 1), "rightmost": (0, -1), "topmost": (1, 1),
                      "bottommost": (1, -1)}[ref["superlative"]]  # fmt: skip
        ranked = sorted(found, key=lambda i: sign * scene.objects[i].centre[axis])
        first, second = (sign * scene.objects[i].centre[axis] for i in ranked[:2])
        return None if second - first <= scene.margin else {ranked[0]}
    return found


def fact_value(scene: ReferenceImage, fact: dict) -> bool | None:
    op = fact["op"]
    if op == "exist":
        return len(scene.matching(fact["filter"])) > 0
    if op == "count":
        return len(scene.matching(fact["filter"])) == fact["n"]
    if op == "relate":
        return any(
            i != j and scene.offset(fact["rel"], i, j) > scene.margin
            for i in scene.matching(fact["a"])
            for j in scene.matching(fact["b"])
        )
    if op == "located":
        third = scene.size / 3
        inside = {
            "left": lambda c: c[0] < third,
            "right": lambda c: c[0] > 2 * third,
            "top": lambda c: c[1] < third,
            "bottom": lambda c: c[1] > 2 * third,
        }[fact["region"]]
        return any(inside(scene.objects[i].centre) for i in scene.matching(fact["filter"]))
    if op == "unrendered":
        return None if scene.matching(fact["filter"]) else False
    raise AssertionError(f"unexpected fact {fact}")


def answer(scene: ReferenceImage, q: dict) -> str | None:
    op = q["op"]
    if op == "exist":
        return "yes" if scene.matching(q["filter"]) else "no"
    if op == "count":
        return str(len(scene.matching(q["filter"])))
    if op == "query":
        found = resolve(scene, q["object"])
        if not found or len(found) != 1:
            return None
        return scene.objects[found.pop()].attrs[q["attr"]]
    if op == "compare_count":
        a, b = len(scene.matching(q["a"])), len(scene.matching(q["b"]))
        return "yes" if {"more": a > b, "fewer": a < b, "equal": a == b}[q["how"]] else "no"
    a, b = resolve(scene, q["a"]), resolve(scene, q["b"])
    if not a or not b or len(a) != 1 or len(b) != 1 or a == b:
        return None
    oa, ob = scene.objects[a.pop()], scene.objects[b.pop()]
    if op == "same":
        return "yes" if oa.attrs[q["attr"]] == ob.attrs[q["attr"]] else "no"
    if op == "compare_size":
        diff = SIZE_RANK[oa.attrs["size"]] - SIZE_RANK[ob.attrs["size"]]
        return "yes" if (diff > 0 if q["how"] == "bigger" else diff < 0) else "no"
    raise AssertionError(f"unexpected question {q}")


def statement_value(left: ReferenceImage, right: ReferenceImage, st: dict) -> bool:
    a, b = len(left.matching(st["filter"])), len(right.matching(st["filter"]))
    return {
        "both": a > 0 and b > 0,
        "exactly_one": (a > 0) ^ (b > 0),
        "neither": a == 0 and b == 0,
        "more": (a > b) if st.get("side") == "left" else (b > a),
        "same_count": a == b,
        "total": a + b == st.get("n"),
    }[st["op"]]
