"""Referring expressions: definite descriptions that pick out exactly one object of an image.

Families: attribute ("the red ball"), relation ("the ball left of the blue box") and
superlative ("the leftmost ball"). Targets that share a shape or colour with another object (a
distractor) come first, and attribute descriptions prefer naming what a distractor shares.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ash_neuro.data.annotations.phrasing import Phrasing, relation_references
from ash_neuro.data.programs import SUPERLATIVES, SceneGraph, describe, unique_reference

REFEXP_FAMILIES = ("attribute", "relation", "superlative")


@dataclass(frozen=True)
class ReferringExpression:
    text: str
    target: int
    family: str
    program: dict  # a reference that resolves to exactly [target]


def _attribute_references(graph: SceneGraph, target: int) -> list[dict]:
    """Unique attribute descriptions, preferring ones that mention what a distractor shares."""
    obj = graph.objects[target]
    shared = {
        a
        for a in ("shape", "colour")
        for j, other in enumerate(graph.objects)
        if j != target and other.get(a) == obj.get(a)
    }
    descriptions = graph.unique_descriptions[target]
    preferred = [d for d in descriptions if shared & set(d)]
    return [{"filter": describe(obj, d)} for d in (preferred or descriptions)]


def _superlative_references(graph: SceneGraph, target: int) -> list[dict]:
    obj = graph.objects[target]
    filters = [{}, {"shape": obj.shape}, {"colour": obj.colour}]
    refs = [{"filter": f, "superlative": s} for f in filters for s in SUPERLATIVES]
    return [r for r in refs if unique_reference(graph, r) == target]


def make_referring_expressions(
    rng: random.Random, graph: SceneGraph, k: int
) -> list[ReferringExpression]:
    """Up to k expressions, each resolving to exactly one object; targets that share a shape
    or colour with another object (a distractor) come first."""
    ph = Phrasing(rng)
    objs = graph.objects

    def has_distractor(t: int) -> bool:
        return any(
            j != t and (o.shape == objs[t].shape or o.colour == objs[t].colour)
            for j, o in enumerate(objs)
        )

    first = [t for t in range(len(objs)) if has_distractor(t)]
    rest = [t for t in range(len(objs)) if not has_distractor(t)]
    rng.shuffle(first)
    rng.shuffle(rest)
    order = first + rest
    makers = {
        "attribute": lambda t: _attribute_references(graph, t),
        "relation": lambda t: relation_references(rng, graph, t),
        "superlative": lambda t: _superlative_references(graph, t),
    }
    out: list[ReferringExpression] = []
    seen: set[str] = set()
    for target in (order * k)[: 2 * k]:
        if len(out) == k:
            break
        for family in rng.sample(REFEXP_FAMILIES, len(REFEXP_FAMILIES)):
            refs = makers[family](target)
            if not refs:
                continue
            ref = rng.choice(refs)
            text = "the " + ph.reference(ref)
            if unique_reference(graph, ref) == target and text not in seen:
                seen.add(text)
                out.append(ReferringExpression(text, target, family, ref))
                break
    return out
