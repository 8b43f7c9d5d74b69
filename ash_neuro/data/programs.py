"""The semantics of every annotation: small programs evaluated on a rendered scene graph.

Every caption, question, hypothesis, referring expression and NLVR statement of the world is
generated as a program (a JSON-able dict) and its label is this module's evaluation of it, so
labels are right by construction; the programs are stored beside the text.

Positions are box centres of the rendered instance masks (pixels of the final image). Spatial
words are only used where they are clear: "A left of B" needs A's centre at least
`RELATION_MARGIN * image_size` left of B's, and a reference whose relation or superlative
depends on a closer call is ill-posed (resolves to None), never asked.

Programs
- filter: {attr: value} over "size", "colour", "texture", "shape"; {} matches every object.
- reference (an object): {"filter": F} plus optionally {"rel": r, "anchor": F_anchor} (objects
  matching F that are r of the unique anchor) or {"superlative": s} (the clearly extreme one).
- fact (captions, entailment), 3-valued:
  exist {filter}, count {filter, n} (exactly n), relate {a, rel, b} (some a is rel of some b),
  located {filter, region} (some match lies in that third of the image),
  unrendered {filter, property}: unknown (None) when a match exists, else False.
- question (VQA): exist {filter}, count {filter}, query {attr, object}, same {attr, a, b},
  compare_size {how: bigger|smaller, a, b}, compare_count {how: more|fewer|equal, a, b}.
- statement (NLVR, over a left and a right image): both / exactly_one / neither {filter},
  more {filter, side}, same_count {filter}, total {filter, n}.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

ATTRIBUTES = ("size", "colour", "texture", "shape")  # also the word order of noun phrases
RELATIONS = ("left", "right", "above", "below")
OPPOSITE = {"left": "right", "right": "left", "above": "below", "below": "above"}
REGIONS = ("left", "right", "top", "bottom")
OPPOSITE_REGION = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}
SUPERLATIVES = ("leftmost", "rightmost", "topmost", "bottommost")
SIZE_ORDER = {"small": 0, "medium": 1, "large": 2}
# Properties no pixel shows: claims about them are neither entailed nor contradicted.
UNRENDERED_PROPERTIES = (
    "wood",
    "metal",
    "plastic",
    "glass",
    "rubber",
    "heavy",
    "hollow",
    "hot",
    "cold",
    "fragile",
    "expensive",
    "old",
)
RELATION_MARGIN = 0.06  # fraction of the image side

Filter = dict[str, str]


@dataclass(frozen=True)
class GraphObject:
    shape: str
    colour: str
    size: str
    texture: str
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in final pixels, x1/y1 exclusive

    @property
    def cx(self) -> float:
        return (self.box[0] + self.box[2]) / 2

    @property
    def cy(self) -> float:
        return (self.box[1] + self.box[3]) / 2

    def get(self, attr: str) -> str:
        return getattr(self, attr)


@dataclass(frozen=True)
class SceneGraph:
    objects: tuple[GraphObject, ...]
    image_size: int

    @property
    def margin(self) -> float:
        return RELATION_MARGIN * self.image_size

    @functools.cached_property
    def unique_descriptions(self) -> tuple[tuple[tuple[str, ...], ...], ...]:
        """Per object, the attribute subsets whose values pick out that object alone."""
        out: list[list[tuple[str, ...]]] = [[] for _ in self.objects]
        for r in range(1, len(ATTRIBUTES) + 1):
            for attrs in itertools.combinations(ATTRIBUTES, r):
                keys = [tuple(o.get(a) for a in attrs) for o in self.objects]
                for i, key in enumerate(keys):
                    if keys.count(key) == 1:
                        out[i].append(attrs)
        return tuple(tuple(d) for d in out)


def describe(obj: GraphObject, attrs: tuple[str, ...] | list[str]) -> Filter:
    return {a: obj.get(a) for a in attrs}


def matches(obj: GraphObject, filt: Filter) -> bool:
    for attr, value in filt.items():  # a plain loop: this is the generator's innermost call
        if getattr(obj, attr) != value:
            return False
    return True


def select(graph: SceneGraph, filt: Filter) -> list[int]:
    return [i for i, o in enumerate(graph.objects) if matches(o, filt)]


def displacement(graph: SceneGraph, rel: str, i: int, j: int) -> float:
    """How far object i lies in direction `rel` from object j (negative: the other way)."""
    a, b = graph.objects[i], graph.objects[j]
    if rel == "left":
        return b.cx - a.cx
    if rel == "right":
        return a.cx - b.cx
    if rel == "above":
        return b.cy - a.cy
    if rel == "below":
        return a.cy - b.cy
    raise ValueError(f"unknown relation {rel!r}")


def relation_holds(graph: SceneGraph, rel: str, i: int, j: int) -> bool:
    return i != j and displacement(graph, rel, i, j) > graph.margin


def in_region(graph: SceneGraph, i: int, region: str) -> bool:
    o, third = graph.objects[i], graph.image_size / 3
    return {
        "left": o.cx < third,
        "right": o.cx > 2 * third,
        "top": o.cy < third,
        "bottom": o.cy > 2 * third,
    }[region]


def _superlative_key(graph: SceneGraph, superlative: str, i: int) -> float:
    o = graph.objects[i]
    return {"leftmost": o.cx, "rightmost": -o.cx, "topmost": o.cy, "bottommost": -o.cy}[superlative]


def resolve_reference(graph: SceneGraph, ref: dict) -> list[int] | None:
    """Objects a reference denotes, or None when it is ill-posed (ambiguous anchor/position)."""
    candidates = select(graph, ref["filter"])
    if "rel" in ref:
        anchors = select(graph, ref["anchor"])
        if len(anchors) != 1:
            return None
        (anchor,) = anchors
        candidates = [i for i in candidates if i != anchor]
        if any(abs(displacement(graph, ref["rel"], i, anchor)) <= graph.margin for i in candidates):
            return None
        return [i for i in candidates if relation_holds(graph, ref["rel"], i, anchor)]
    if "superlative" in ref:
        if len(candidates) < 2:
            return None  # "the leftmost star" presupposes several stars
        keys = sorted((_superlative_key(graph, ref["superlative"], i), i) for i in candidates)
        if keys[1][0] - keys[0][0] <= graph.margin:
            return None
        return [keys[0][1]]
    return candidates


def unique_reference(graph: SceneGraph, ref: dict) -> int | None:
    found = resolve_reference(graph, ref)
    return found[0] if found is not None and len(found) == 1 else None


def evaluate_fact(graph: SceneGraph, fact: dict) -> bool | None:
    """True (entailed), False (contradicted) or None (undecidable from the image)."""
    op = fact["op"]
    if op == "exist":
        return bool(select(graph, fact["filter"]))
    if op == "count":
        return len(select(graph, fact["filter"])) == fact["n"]
    if op == "relate":
        return any(
            relation_holds(graph, fact["rel"], i, j)
            for i in select(graph, fact["a"])
            for j in select(graph, fact["b"])
        )
    if op == "located":
        return any(in_region(graph, i, fact["region"]) for i in select(graph, fact["filter"]))
    if op == "unrendered":
        return None if select(graph, fact["filter"]) else False
    raise ValueError(f"unknown fact op {op!r}")


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def answer_question(graph: SceneGraph, question: dict) -> str | None:
    """The answer (a word of the answer vocabulary), or None when the question is ill-posed."""
    op = question["op"]
    if op == "exist":
        return _yes_no(bool(select(graph, question["filter"])))
    if op == "count":
        return str(len(select(graph, question["filter"])))
    if op == "query":
        target = unique_reference(graph, question["object"])
        return None if target is None else graph.objects[target].get(question["attr"])
    if op == "compare_count":
        a, b = len(select(graph, question["a"])), len(select(graph, question["b"]))
        return _yes_no({"more": a > b, "fewer": a < b, "equal": a == b}[question["how"]])
    a, b = unique_reference(graph, question["a"]), unique_reference(graph, question["b"])
    if a is None or b is None or a == b:
        return None
    oa, ob = graph.objects[a], graph.objects[b]
    if op == "same":
        return _yes_no(oa.get(question["attr"]) == ob.get(question["attr"]))
    if op == "compare_size":
        sa, sb = SIZE_ORDER[oa.size], SIZE_ORDER[ob.size]
        return _yes_no(sa > sb if question["how"] == "bigger" else sa < sb)
    raise ValueError(f"unknown question op {op!r}")


def evaluate_statement(left: SceneGraph, right: SceneGraph, statement: dict) -> bool:
    """Truth of an NLVR statement about a (left, right) image pair."""
    op, filt = statement["op"], statement["filter"]
    n_left, n_right = len(select(left, filt)), len(select(right, filt))
    if op == "both":
        return n_left > 0 and n_right > 0
    if op == "exactly_one":
        return (n_left > 0) != (n_right > 0)
    if op == "neither":
        return n_left == 0 and n_right == 0
    if op == "more":
        return n_left > n_right if statement["side"] == "left" else n_right > n_left
    if op == "same_count":
        return n_left == n_right
    if op == "total":
        return n_left + n_right == statement["n"]
    raise ValueError(f"unknown statement op {op!r}")
