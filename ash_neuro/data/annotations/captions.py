"""Captions: true descriptions of one image, made from four templates.

Templates: "listing" (every object, grouped by the same attributes, so each count is exact),
"relation" (two objects in a clear spatial relation), "counting" (objects grouped by one
attribute) and "detail" (one object in full, optionally with its region). Each caption keeps
the facts it states (programs evaluating True on the scene; see `ash_neuro/data/programs.py`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from ash_neuro.data.annotations.phrasing import (
    DESCRIPTIONS,
    NUMBER_WORDS,
    OBJECT_WORDS,
    REGION_PHRASES,
    RELATION_PHRASES,
    Phrasing,
    clear_pairs,
    join_list,
)
from ash_neuro.data.programs import ATTRIBUTES, REGIONS, Filter, SceneGraph, describe, in_region

CAPTION_TEMPLATES = ("listing", "relation", "counting", "detail")
# Listings describe every object with the same attributes, so each group's count is exact;
# crowded scenes get short descriptions to stay within the text encoder's max_len.
LISTING_ATTRS_FEW = (
    ("colour", "shape"),
    ("size", "colour", "shape"),
    ("colour", "texture", "shape"),
    ("size", "colour", "texture", "shape"),
)
LISTING_ATTRS_MANY = (("colour", "shape"), ("size", "shape"))


@dataclass(frozen=True)
class Caption:
    text: str
    template: str
    facts: list[dict]  # every fact evaluates True on the scene


def _first_word_is_plural(phrase: str) -> bool:
    return phrase.split(" ", 1)[0] in NUMBER_WORDS[2:]


def _groups(
    graph: SceneGraph, attrs: tuple[str, ...], order: list[int]
) -> list[tuple[Filter, int]]:
    counts: dict[tuple[str, ...], int] = {}
    for i in order:
        key = tuple(graph.objects[i].get(a) for a in attrs)
        counts[key] = counts.get(key, 0) + 1
    return [(dict(zip(attrs, key)), n) for key, n in counts.items()]


def _caption_listing(ph: Phrasing, graph: SceneGraph) -> tuple[str, list[dict]]:
    rng, n = ph.rng, len(graph.objects)
    attrs = rng.choice(LISTING_ATTRS_FEW if n <= 3 else LISTING_ATTRS_MANY)
    order = list(range(n))
    rng.shuffle(order)
    groups = _groups(graph, attrs, order)
    facts = [{"op": "count", "filter": f, "n": k} for f, k in groups]
    body = join_list([ph.counted(f, k) for f, k in groups])
    style = rng.randrange(5)
    if style == 0 and n >= 2:
        facts.append({"op": "count", "filter": {}, "n": n})
        return f"{NUMBER_WORDS[n]} {ph.pick(OBJECT_WORDS)}s: {body}", facts
    if style == 1:
        return ("there are " if _first_word_is_plural(body) else "there is ") + body, facts
    prefix = ("", "an image of ", "a picture with ", "a scene showing ")[style % 4]
    return prefix + body, facts


def _caption_relation(ph: Phrasing, graph: SceneGraph) -> tuple[str, list[dict]]:
    i, j, rel = ph.rng.choice(clear_pairs(graph))
    a = describe(graph.objects[i], ph.rng.choice(DESCRIPTIONS))
    b = describe(graph.objects[j], ph.rng.choice(DESCRIPTIONS))
    body = f"{ph.indefinite(a)} {ph.pick(RELATION_PHRASES[rel])} {ph.indefinite(b)}"
    prefix = ph.pick(("", "", "there is ", "a picture of "))
    return prefix + body, [{"op": "relate", "a": a, "rel": rel, "b": b}]


def _caption_counting(ph: Phrasing, graph: SceneGraph) -> tuple[str, list[dict]]:
    n = len(graph.objects)
    attr = ph.pick(("shape", "shape", "colour", "size", "texture"))
    order = list(range(n))
    ph.rng.shuffle(order)
    groups = _groups(graph, (attr,), order)
    facts = [{"op": "count", "filter": f, "n": k} for f, k in groups]
    body = join_list([f"{NUMBER_WORDS[k]} {ph.noun_phrase(f, plural=k > 1)}" for f, k in groups])
    if n >= 2 and ph.rng.random() < 0.5:
        facts.append({"op": "count", "filter": {}, "n": n})
        return f"{NUMBER_WORDS[n]} {ph.pick(OBJECT_WORDS)}s in total: {body}", facts
    return body, facts


def _caption_detail(ph: Phrasing, graph: SceneGraph) -> tuple[str, list[dict]]:
    i = ph.rng.randrange(len(graph.objects))
    attrs = ATTRIBUTES if ph.rng.random() < 0.5 else ("size", "colour", "shape")
    filt = describe(graph.objects[i], attrs)
    facts: list[dict] = [{"op": "exist", "filter": filt}]
    text = ph.pick(("", "there is ", "the image shows ")) + ph.indefinite(filt)
    regions = [r for r in REGIONS if in_region(graph, i, r)]
    if regions and ph.rng.random() < 0.7:
        region = ph.rng.choice(regions)
        facts.append({"op": "located", "filter": filt, "region": region})
        text += " " + ph.pick(REGION_PHRASES[region])
    return text, facts


_CAPTION_MAKERS: dict[str, Callable[[Phrasing, SceneGraph], tuple[str, list[dict]]]] = {
    "listing": _caption_listing,
    "relation": _caption_relation,
    "counting": _caption_counting,
    "detail": _caption_detail,
}


def make_captions(rng: random.Random, graph: SceneGraph, k: int) -> list[Caption]:
    """k true captions, cycling through the feasible templates in a random order."""
    ph = Phrasing(rng)
    feasible = [t for t in CAPTION_TEMPLATES if t != "relation" or clear_pairs(graph)]
    out: list[Caption] = []
    seen: set[str] = set()
    order: list[str] = []
    while len(out) < k:
        if not order:
            order = rng.sample(feasible, len(feasible))
        template = order.pop()
        for _ in range(8):  # a few redraws to avoid repeating a caption of this image
            text, facts = _CAPTION_MAKERS[template](ph, graph)
            if text not in seen:
                break
        seen.add(text)
        out.append(Caption(text + ".", template, facts))
    return out
