"""Entailment hypotheses (visual entailment): a sentence about one image and its label.

The label (entailment / neutral / contradiction) is drawn first, evenly, and a hypothesis with
that label is searched for among the kinds of fact (exist, count, relate, attribute, located);
a neutral hypothesis claims a property no pixel shows (material, weight, ...) about an object
that is present, and the same properties also appear in contradictions, about absent objects,
so they are no keyword for "neutral".
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ash_neuro.data.annotations.phrasing import (
    DESCRIPTIONS,
    NUMBER_WORDS,
    REGION_PHRASES,
    RELATION_PHRASES,
    VALUES,
    Phrasing,
    clear_pairs,
    swapped,
    unique_filter,
)
from ash_neuro.data.programs import (
    ATTRIBUTES,
    OPPOSITE,
    OPPOSITE_REGION,
    REGIONS,
    UNRENDERED_PROPERTIES,
    Filter,
    SceneGraph,
    describe,
    evaluate_fact,
    in_region,
    select,
)

VE_LABELS = ("entailment", "neutral", "contradiction")
# (adjective, predicate) for each property no pixel shows
PROPERTY_PHRASES = {
    "wood": ("wooden", "is made of wood"),
    "metal": ("metal", "is made of metal"),
    "plastic": ("plastic", "is made of plastic"),
    "glass": ("glass", "is made of glass"),
    "rubber": ("rubber", "is made of rubber"),
    "heavy": ("heavy", "is heavy"),
    "hollow": ("hollow", "is hollow"),
    "hot": ("hot", "is hot to the touch"),
    "cold": ("cold", "is cold"),
    "fragile": ("fragile", "is fragile"),
    "expensive": ("expensive", "is expensive"),
    "old": ("old", "is very old"),
}
assert set(PROPERTY_PHRASES) == set(UNRENDERED_PROPERTIES)


@dataclass(frozen=True)
class Hypothesis:
    text: str
    label: str  # one of VE_LABELS
    program: dict  # a fact


def _absent_filter(rng: random.Random, graph: SceneGraph, tries: int = 10) -> Filter | None:
    """A description, one attribute away from a present object, that matches nothing."""
    for _ in range(tries):
        obj = rng.choice(graph.objects)
        filt = swapped(rng, describe(obj, rng.choice(DESCRIPTIONS)))
        if not select(graph, filt):
            return filt
    return None


Said = tuple[str, dict]  # (text, program)


def _ve_exist(ph: Phrasing, graph: SceneGraph, truth: bool) -> Said | None:
    if truth:
        filt = describe(ph.rng.choice(graph.objects), ph.rng.choice(DESCRIPTIONS))
    else:
        filt = _absent_filter(ph.rng, graph)
        if filt is None:
            return None
    template = ph.pick(("there is {}.", "the image contains {}.", "{} is in the picture."))
    return template.format(ph.indefinite(filt)), {"op": "exist", "filter": filt}


def _ve_count(ph: Phrasing, graph: SceneGraph, truth: bool) -> Said | None:
    obj = ph.rng.choice(graph.objects)
    filt = ph.rng.choice([{}, {"shape": obj.shape}, {"colour": obj.colour}, {"size": obj.size}])
    if ph.rng.random() < 0.25:
        filt = swapped(ph.rng, {"colour": obj.colour, "shape": obj.shape})
    actual = len(select(graph, filt))
    n = actual if truth else ph.rng.choice([m for m in range(7) if m != actual])
    if n == 0:
        text = f"there are no {ph.noun_phrase(filt, plural=True)}."
    elif n == 1:
        text = f"there is exactly one {ph.noun_phrase(filt)}."
    else:
        text = ph.pick(("there are exactly {} {}.", "the picture shows {} {}.")).format(
            NUMBER_WORDS[n], ph.noun_phrase(filt, plural=True)
        )
    return text, {"op": "count", "filter": filt, "n": n}


def _ve_relate(ph: Phrasing, graph: SceneGraph, truth: bool) -> Said | None:
    pairs = clear_pairs(graph)
    if not pairs:
        return None
    i, j, rel = ph.rng.choice(pairs)
    a, b = unique_filter(ph.rng, graph, i), unique_filter(ph.rng, graph, j)
    if a is None or b is None:
        return None
    stated = rel if truth else OPPOSITE[rel]
    text = (
        f"the {ph.noun_phrase(a)} is {ph.pick(RELATION_PHRASES[stated])} the {ph.noun_phrase(b)}."
    )
    return text, {"op": "relate", "a": a, "rel": stated, "b": b}


def _ve_attribute(ph: Phrasing, graph: SceneGraph, truth: bool) -> Said | None:
    i = ph.rng.randrange(len(graph.objects))
    attr = ph.rng.choice(ATTRIBUTES)
    base = unique_filter(ph.rng, graph, i, exclude=attr)
    if base is None:
        return None
    actual = graph.objects[i].get(attr)
    value = actual if truth else ph.rng.choice([v for v in VALUES[attr] if v != actual])
    if attr == "shape":
        said = ph.indefinite({"shape": value})
    else:
        said = ph.noun_phrase({attr: value}).rsplit(" ", 1)[0]  # the adjective alone
    return f"the {ph.noun_phrase(base)} is {said}.", {
        "op": "exist",
        "filter": {**base, attr: value},
    }


def _ve_located(ph: Phrasing, graph: SceneGraph, truth: bool) -> Said | None:
    i = ph.rng.randrange(len(graph.objects))
    regions = [r for r in REGIONS if in_region(graph, i, r)]
    base = unique_filter(ph.rng, graph, i)
    if not regions or base is None:
        return None
    region = ph.rng.choice(regions)
    region = region if truth else OPPOSITE_REGION[region]
    text = f"the {ph.noun_phrase(base)} is {ph.pick(REGION_PHRASES[region])}."
    return text, {"op": "located", "filter": base, "region": region}


def _ve_unrendered(ph: Phrasing, graph: SceneGraph, exists: bool) -> Said | None:
    """A claim about a property no pixel shows: undecidable (neutral) about an existing object,
    false when the object it asserts is absent."""
    prop = ph.rng.choice(UNRENDERED_PROPERTIES)
    adjective, predicate = PROPERTY_PHRASES[prop]
    program = {"op": "unrendered", "property": prop}
    if not exists:
        filt = _absent_filter(ph.rng, graph)
        if filt is None:
            return None
        if ph.rng.random() < 0.5:
            return f"{ph.indefinite(filt)} {predicate}.", {**program, "filter": filt}
    else:
        i = ph.rng.randrange(len(graph.objects))
        style = ph.rng.randrange(3)
        unique = unique_filter(ph.rng, graph, i)
        if style == 0 and unique is not None:
            return f"the {ph.noun_phrase(unique)} {predicate}.", {**program, "filter": unique}
        filt = describe(graph.objects[i], ph.rng.choice(DESCRIPTIONS))
        if style == 1 and len(select(graph, filt)) >= 2:
            text = f"one of the {ph.noun_phrase(filt, plural=True)} {predicate}."
            return text, {**program, "filter": filt}
    article = "an" if adjective[0] in "aeiou" else "a"
    return f"there is {article} {adjective} {ph.noun_phrase(filt)}.", {**program, "filter": filt}


_ENTAILMENT_KINDS = (_ve_exist, _ve_count, _ve_relate, _ve_attribute, _ve_located)
_FACT_LABEL = {True: "entailment", None: "neutral", False: "contradiction"}


def _hypothesis(ph: Phrasing, graph: SceneGraph, label: str) -> Said | None:
    if label == "neutral":
        makers = [lambda p, g: _ve_unrendered(p, g, exists=True)]
    else:
        truth = label == "entailment"
        makers = [lambda p, g, m=m: m(p, g, truth) for m in _ENTAILMENT_KINDS]
        if not truth:
            # twice: unrendered properties must not be a keyword for "neutral"
            makers += [lambda p, g: _ve_unrendered(p, g, exists=False)] * 2
    ph.rng.shuffle(makers)
    for make in makers * 2:
        said = make(ph, graph)
        if said is not None and _FACT_LABEL[evaluate_fact(graph, said[1])] == label:
            return said
    return None


def make_hypotheses(rng: random.Random, graph: SceneGraph, k: int) -> list[Hypothesis]:
    """k hypotheses whose labels cycle through the three classes in a random order."""
    ph = Phrasing(rng)
    out: list[Hypothesis] = []
    seen: set[str] = set()
    labels: list[str] = []
    for _ in range(3 * k):
        if len(out) == k:
            break
        if not labels:
            labels = rng.sample(VE_LABELS, len(VE_LABELS))
        label = labels.pop()
        said = _hypothesis(ph, graph, label)
        if said is None or said[0] in seen:
            labels.append(label)
            continue
        seen.add(said[0])
        out.append(Hypothesis(said[0], label, said[1]))
    return out
