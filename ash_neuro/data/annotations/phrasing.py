"""What the annotation families share: the words, `Phrasing`, and how objects get described.

Surface forms vary with synonyms ("ball" for circle, "big" for large, "left of" / "to the left
of") chosen by a `random.Random` that the caller seeds from the image's generator; `Phrasing`
holds that generator and turns filters and references into words. The helpers below pick
descriptions several families need: object pairs in a clear spatial relation, a description
that picks out one object alone, a description with one attribute value swapped, and
relational references ("<filter> <rel> the <anchor>") to one object.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

from ash_neuro.data.programs import (
    RELATIONS,
    Filter,
    SceneGraph,
    describe,
    relation_holds,
    unique_reference,
)
from ash_neuro.data.scene import COLOURS, SHAPES, SIZES, TEXTURES

VALUES = {"shape": SHAPES, "colour": COLOURS, "size": SIZES, "texture": TEXTURES}

SHAPE_WORDS = {
    "circle": ("circle", "ball", "disc"),
    "square": ("square", "box"),
    "triangle": ("triangle",),
    "diamond": ("diamond", "rhombus"),
    "star": ("star",),
    "hexagon": ("hexagon",),
    "cross": ("cross", "plus"),
}
PLURALS = {"box": "boxes", "cross": "crosses", "rhombus": "rhombuses", "plus": "pluses"}
SIZE_WORDS = {
    "small": ("small", "little", "tiny"),
    "medium": ("medium",),
    "large": ("large", "big"),
}
TEXTURE_WORDS = {"solid": ("solid", "plain"), "striped": ("striped", "stripy")}
OBJECT_WORDS = ("object", "thing", "item")
NUMBER_WORDS = (
    "no",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
)
RELATION_PHRASES = {
    "left": ("to the left of", "left of", "on the left of"),
    "right": ("to the right of", "right of", "on the right of"),
    "above": ("above", "over"),
    "below": ("below", "under", "beneath"),
}
REGION_PHRASES = {
    "left": ("on the left", "on the left side"),
    "right": ("on the right", "on the right side"),
    "top": ("at the top", "near the top"),
    "bottom": ("at the bottom", "near the bottom"),
}
SUPERLATIVE_WORDS = {
    "leftmost": ("leftmost",),
    "rightmost": ("rightmost",),
    "topmost": ("topmost", "highest"),
    "bottommost": ("bottommost", "lowest"),
}

# Attribute sets used to describe objects when uniqueness is not required.
DESCRIPTIONS = (
    ("shape",),
    ("colour",),
    ("colour", "shape"),
    ("colour", "shape"),
    ("size", "shape"),
    ("size", "colour", "shape"),
    ("colour", "texture", "shape"),
)


class Phrasing:
    """Turns filters and references into words, choosing among synonyms with `rng`."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def pick(self, options: Sequence[str]) -> str:
        return options[int(self.rng.random() * len(options))]

    def noun_phrase(self, filt: Filter, plural: bool = False) -> str:
        words = []
        if "size" in filt:
            words.append(self.pick(SIZE_WORDS[filt["size"]]))
        if "colour" in filt:
            words.append(filt["colour"])
        if "texture" in filt:
            words.append(self.pick(TEXTURE_WORDS[filt["texture"]]))
        noun = self.pick(SHAPE_WORDS[filt["shape"]] if "shape" in filt else OBJECT_WORDS)
        words.append(PLURALS.get(noun, noun + "s") if plural else noun)
        return " ".join(words)

    def indefinite(self, filt: Filter) -> str:
        phrase = self.noun_phrase(filt)
        return ("an " if phrase[0] in "aeiou" else "a ") + phrase

    def counted(self, filt: Filter, n: int) -> str:
        """ "a red ball", "two red balls", "no red balls"."""
        if n == 1:
            return (
                self.indefinite(filt)
                if self.rng.random() < 0.5
                else "one " + self.noun_phrase(filt)
            )
        return f"{NUMBER_WORDS[n]} {self.noun_phrase(filt, plural=True)}"

    def reference(self, ref: dict) -> str:
        """A definite description without its article: "red ball left of the blue box"."""
        phrase = self.noun_phrase(ref["filter"])
        if "rel" in ref:
            rel = self.pick(RELATION_PHRASES[ref["rel"]])
            return f"{phrase} {rel} the {self.noun_phrase(ref['anchor'])}"
        if "superlative" in ref:
            return f"{self.pick(SUPERLATIVE_WORDS[ref['superlative']])} {phrase}"
        return phrase


def join_list(items: list[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def clear_pairs(graph: SceneGraph) -> list[tuple[int, int, str]]:
    """Every (i, j, relation) such that object i is clearly `relation` of object j."""
    n = len(graph.objects)
    return [
        (i, j, rel)
        for i, j in itertools.permutations(range(n), 2)
        for rel in RELATIONS
        if relation_holds(graph, rel, i, j)
    ]


def unique_filter(
    rng: random.Random, graph: SceneGraph, i: int, exclude: str = ""
) -> Filter | None:
    """A random attribute description that picks out object i alone (not using `exclude`)."""
    options = [d for d in graph.unique_descriptions[i] if exclude not in d]
    if not options:
        return None
    # favour short descriptions, as people do
    shortest = min(len(d) for d in options)
    short = [d for d in options if len(d) <= shortest + 1]
    return describe(graph.objects[i], rng.choice(short))


def swapped(rng: random.Random, filt: Filter) -> Filter:
    """The filter with one attribute value replaced by another value."""
    attr = rng.choice(list(filt))
    value = rng.choice([v for v in VALUES[attr] if v != filt[attr]])
    return {**filt, attr: value}


def relation_references(
    rng: random.Random, graph: SceneGraph, target: int, exclude: str = "", cap: int = 8
) -> list[dict]:
    """References "<filter> <rel> the <anchor>" that pick out `target` alone."""
    obj = graph.objects[target]
    target_filters = [
        {},
        *(describe(obj, d) for d in (("shape",), ("colour",), ("colour", "shape"))),
    ]
    target_filters = [f for f in target_filters if exclude not in f]
    out = []
    anchors = [a for a in range(len(graph.objects)) if a != target]
    rng.shuffle(anchors)
    for a in anchors:
        anchor = unique_filter(rng, graph, a)
        if anchor is None:
            continue
        for rel in RELATIONS:
            if not relation_holds(graph, rel, target, a):
                continue
            for filt in target_filters:
                ref = {"filter": filt, "rel": rel, "anchor": anchor}
                if unique_reference(graph, ref) == target:
                    out.append(ref)
        if len(out) >= cap:
            break
    return out
