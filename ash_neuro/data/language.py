"""Annotations of one image (or image pair): sample programs, label them, say them in English.

Each generator samples candidate programs (`programs.py`), labels every candidate by
evaluating it on the scene graph, and picks one so that labels are balanced: for VQA a family
first, then an answer uniformly among the answers that family can produce for this image
(rejection sampling over candidates), then a question with that answer. Entailment labels and
NLVR truth values are drawn first (evenly) and a program with that label is searched for.

Surface forms vary with synonyms ("ball" for circle, "big" for large, "left of" / "to the left
of") chosen by a `random.Random` that the caller seeds from the image's generator.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ash_neuro.data.programs import (
    ATTRIBUTES,
    OPPOSITE,
    OPPOSITE_REGION,
    REGIONS,
    RELATIONS,
    SUPERLATIVES,
    UNRENDERED_PROPERTIES,
    Filter,
    SceneGraph,
    answer_question,
    describe,
    evaluate_fact,
    evaluate_statement,
    in_region,
    relation_holds,
    select,
    unique_reference,
)
from ash_neuro.data.scene import COLOURS, SHAPES, SIZES, TEXTURES

VQA_FAMILIES = (
    "exist",
    "count",
    "query_color",
    "query_shape",
    "query_size",
    "relation",
    "compare",
)
ANSWERS = ("no", "yes", *(str(n) for n in range(7)), *COLOURS, *SHAPES, *SIZES)
VE_LABELS = ("entailment", "neutral", "contradiction")
CAPTION_TEMPLATES = ("listing", "relation", "counting", "detail")
REFEXP_FAMILIES = ("attribute", "relation", "superlative")
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


@dataclass(frozen=True)
class Question:
    text: str
    family: str
    answer: str
    program: dict


@dataclass(frozen=True)
class Hypothesis:
    text: str
    label: str  # one of VE_LABELS
    program: dict  # a fact


@dataclass(frozen=True)
class ReferringExpression:
    text: str
    target: int
    family: str
    program: dict  # a reference that resolves to exactly [target]


@dataclass(frozen=True)
class Statement:
    text: str
    label: bool
    program: dict


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
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


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


def _clear_pairs(graph: SceneGraph) -> list[tuple[int, int, str]]:
    n = len(graph.objects)
    return [
        (i, j, rel)
        for i, j in itertools.permutations(range(n), 2)
        for rel in RELATIONS
        if relation_holds(graph, rel, i, j)
    ]


def _unique_filter(
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


def _swapped(rng: random.Random, filt: Filter) -> Filter:
    """The filter with one attribute value replaced by another value."""
    attr = rng.choice(list(filt))
    value = rng.choice([v for v in VALUES[attr] if v != filt[attr]])
    return {**filt, attr: value}


def _absent_filter(rng: random.Random, graph: SceneGraph, tries: int = 10) -> Filter | None:
    """A description, one attribute away from a present object, that matches nothing."""
    for _ in range(tries):
        obj = rng.choice(graph.objects)
        filt = _swapped(rng, describe(obj, rng.choice(DESCRIPTIONS)))
        if not select(graph, filt):
            return filt
    return None


# ----------------------------------------------------------------------------- captions


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
    i, j, rel = ph.rng.choice(_clear_pairs(graph))
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
    feasible = [t for t in CAPTION_TEMPLATES if t != "relation" or _clear_pairs(graph)]
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


# ----------------------------------------------------------------------------- VQA


def _exist_candidates(rng: random.Random, graph: SceneGraph) -> list[dict]:
    out = []
    for obj in graph.objects:
        filt = describe(obj, rng.choice(DESCRIPTIONS))
        out.append({"op": "exist", "filter": filt})
        out.append({"op": "exist", "filter": _swapped(rng, filt)})
    return out


def _count_candidates(rng: random.Random, graph: SceneGraph) -> list[dict]:
    filters: list[Filter] = [{}]
    filters += [{attr: v} for attr in ("shape", "colour", "size", "texture") for v in VALUES[attr]]
    filters += [describe(o, rng.choice(DESCRIPTIONS[2:])) for o in graph.objects]
    return [{"op": "count", "filter": f} for f in filters]


def _query_candidates(attr: str) -> Callable[[random.Random, SceneGraph], list[dict]]:
    def candidates(rng: random.Random, graph: SceneGraph) -> list[dict]:
        return [
            {"op": "query", "attr": attr, "object": {"filter": describe(graph.objects[i], d)}}
            for i in range(len(graph.objects))
            for d in graph.unique_descriptions[i]
            if attr not in d
        ]

    return candidates


def _relation_references(
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
        anchor = _unique_filter(rng, graph, a)
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


def _relation_candidates(rng: random.Random, graph: SceneGraph) -> list[dict]:
    attr = rng.choice(("colour", "shape", "size"))
    return [
        {"op": "query", "attr": attr, "object": ref}
        for t in range(len(graph.objects))
        for ref in _relation_references(rng, graph, t, exclude=attr, cap=3)
    ]


def _compare_candidates(rng: random.Random, graph: SceneGraph) -> list[dict]:
    kind = rng.choice(("same", "compare_size", "compare_count"))
    n, out = len(graph.objects), []
    if kind == "compare_count":
        present = [{a: o.get(a)} for o in graph.objects for a in ("shape", "colour")]
        filters = present + [_swapped(rng, f) for f in present]
        pairs = [(a, b) for a, b in itertools.permutations(filters, 2) if a != b]
        for a, b in rng.sample(pairs, min(len(pairs), 16)):
            how = rng.choice(("more", "fewer", "equal"))
            out.append({"op": "compare_count", "how": how, "a": a, "b": b})
        return out
    attr = rng.choice(("colour", "shape", "size")) if kind == "same" else "size"
    for i, j in itertools.permutations(range(n), 2):
        a, b = _unique_filter(rng, graph, i, attr), _unique_filter(rng, graph, j, attr)
        if a is None or b is None:
            continue
        if kind == "same":
            out.append({"op": "same", "attr": attr, "a": {"filter": a}, "b": {"filter": b}})
        else:
            how = rng.choice(("bigger", "smaller"))
            out.append({"op": "compare_size", "how": how, "a": {"filter": a}, "b": {"filter": b}})
    return out


_QUESTION_CANDIDATES = {
    "exist": _exist_candidates,
    "count": _count_candidates,
    "query_color": _query_candidates("colour"),
    "query_shape": _query_candidates("shape"),
    "query_size": _query_candidates("size"),
    "relation": _relation_candidates,
    "compare": _compare_candidates,
}

_QUERY_TEMPLATES = {
    "colour": (
        "what colour is the {}?",
        "what color is the {}?",
        "what is the colour of the {}?",
        "which colour does the {} have?",
    ),
    "shape": (
        "what shape is the {}?",
        "what is the shape of the {}?",
        "what kind of shape is the {}?",
    ),
    "size": ("what size is the {}?", "how big is the {}?", "what is the size of the {}?"),
}


def question_text(ph: Phrasing, q: dict) -> str:
    op = q["op"]
    if op == "exist":
        if ph.rng.random() < 0.3:
            return f"are there any {ph.noun_phrase(q['filter'], plural=True)}?"
        return ph.pick(("is there {}?", "does the image contain {}?", "can you see {}?")).format(
            ph.indefinite(q["filter"])
        )
    if op == "count":
        plural = ph.noun_phrase(q["filter"], plural=True)
        return ph.pick(
            (
                "how many {} are there?",
                "how many {} are in the image?",
                "what number of {} are there?",
            )
        ).format(plural)
    if op == "query":
        return ph.pick(_QUERY_TEMPLATES[q["attr"]]).format(ph.reference(q["object"]))
    if op == "compare_count":
        a, b = ph.noun_phrase(q["a"], plural=True), ph.noun_phrase(q["b"], plural=True)
        if q["how"] == "equal":
            return ph.pick(
                ("are there as many {} as {}?", "is the number of {} the same as the number of {}?")
            ).format(a, b)
        return f"are there {'more' if q['how'] == 'more' else 'fewer'} {a} than {b}?"
    a, b = ph.reference(q["a"]), ph.reference(q["b"])
    if op == "same":
        word = {"colour": ph.pick(("colour", "color")), "shape": "shape", "size": "size"}[q["attr"]]
        template = ph.pick(
            (
                "are the {a} and the {b} the same {w}?",
                "do the {a} and the {b} have the same {w}?",
                "is the {a} the same {w} as the {b}?",
            )
        )
        return template.format(a=a, b=b, w=word)
    if op == "compare_size":
        word = ph.pick(("bigger", "larger")) if q["how"] == "bigger" else "smaller"
        return f"is the {a} {word} than the {b}?"
    raise ValueError(f"unknown question op {op!r}")


# Small counts are possible in almost every scene, large ones only in crowded scenes; weighting
# an answer by how rarely it is available flattens the marginal over a split (majority ~20%).
COUNT_ANSWER_WEIGHT = {str(n): 1.55 ** max(n - 1, 0) for n in range(7)}


def _candidates_by_answer(
    rng: random.Random, graph: SceneGraph, family: str, redraws: int = 3
) -> dict[str, list[dict]]:
    """Well-posed candidate questions of a family grouped by answer; candidate pools with a
    single answer are redrawn a few times (yes/no families then get both answers)."""
    by_answer: dict[str, list[dict]] = {}
    for _ in range(redraws):
        by_answer = {}
        for program in _QUESTION_CANDIDATES[family](rng, graph):
            answer = answer_question(graph, program)
            if answer is not None:
                by_answer.setdefault(answer, []).append(program)
        if len(by_answer) > 1:
            break
    return by_answer


def make_questions(rng: random.Random, graph: SceneGraph, k: int) -> list[Question]:
    """k questions over a random order of families. Within a family the answer is drawn first,
    among the answers its candidates can have on this image, then a question with it: the
    rejection sampling that keeps every family's majority answer a weak baseline."""
    ph = Phrasing(rng)
    out: list[Question] = []
    seen: set[str] = set()
    order: list[str] = []
    failures = 0
    while len(out) < k and failures < 4 * len(VQA_FAMILIES):
        if not order:
            order = rng.sample(VQA_FAMILIES, len(VQA_FAMILIES))
        family = order.pop()
        by_answer = _candidates_by_answer(rng, graph, family)
        if not by_answer:
            failures += 1
            continue
        answers = sorted(by_answer)
        weights = [COUNT_ANSWER_WEIGHT[a] if family == "count" else 1.0 for a in answers]
        answer = rng.choices(answers, weights)[0]
        program = rng.choice(by_answer[answer])
        text = question_text(ph, program)
        if text in seen:
            failures += 1
            continue
        seen.add(text)
        out.append(Question(text, family, answer, program))
    return out


# ----------------------------------------------------------------------------- entailment

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
        filt = _swapped(ph.rng, {"colour": obj.colour, "shape": obj.shape})
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
    pairs = _clear_pairs(graph)
    if not pairs:
        return None
    i, j, rel = ph.rng.choice(pairs)
    a, b = _unique_filter(ph.rng, graph, i), _unique_filter(ph.rng, graph, j)
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
    base = _unique_filter(ph.rng, graph, i, exclude=attr)
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
    base = _unique_filter(ph.rng, graph, i)
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
        unique = _unique_filter(ph.rng, graph, i)
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


# ----------------------------------------------------------------------------- grounding


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
        "relation": lambda t: _relation_references(rng, graph, t),
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


# ----------------------------------------------------------------------------- NLVR

NLVR_OPS = ("both", "exactly_one", "neither", "more", "same_count", "total")

_STATEMENT_TEMPLATES = {
    "both": (
        "both images contain {a}.",
        "there is {a} in both images.",
        "each image has at least one {n}.",
    ),
    "exactly_one": ("exactly one image contains {a}.", "only one of the two images has {a}."),
    "neither": ("neither image contains {a}.", "there is no {n} in either image."),
    "more_left": (
        "the left image has more {p} than the right image.",
        "there are more {p} in the left image than in the right one.",
    ),
    "more_right": (
        "the right image has more {p} than the left image.",
        "there are more {p} in the right image than in the left one.",
    ),
    "same_count": (
        "both images have the same number of {p}.",
        "the two images contain equally many {p}.",
    ),
}


def statement_text(ph: Phrasing, st: dict) -> str:
    filt, op = st["filter"], st["op"]
    if op == "total":
        n = st["n"]
        counted = (
            f"exactly one {ph.noun_phrase(filt)}"
            if n == 1
            else f"{NUMBER_WORDS[n]} {ph.noun_phrase(filt, plural=True)}"
        )
        return f"the two images together contain {counted}."
    key = f"more_{st['side']}" if op == "more" else op
    return ph.pick(_STATEMENT_TEMPLATES[key]).format(
        a=ph.indefinite(filt), n=ph.noun_phrase(filt), p=ph.noun_phrase(filt, plural=True)
    )


def _statement_filters(rng: random.Random, left: SceneGraph, right: SceneGraph) -> list[Filter]:
    present = [describe(o, rng.choice(DESCRIPTIONS)) for g in (left, right) for o in g.objects]
    # in a minimal pair the filters that tell the two images apart are the interesting ones
    differing = [f for f in present if len(select(left, f)) != len(select(right, f))]
    absent = [_swapped(rng, f) for f in rng.sample(present, min(3, len(present)))]
    return present + 2 * differing + absent


def _statement(
    rng: random.Random, left: SceneGraph, right: SceneGraph, op: str, label: bool, filters
) -> dict | None:
    for filt in rng.sample(filters, min(12, len(filters))):
        st: dict = {"op": op, "filter": filt}
        if op == "more":
            st["side"] = rng.choice(("left", "right"))
        elif op == "total":
            actual = len(select(left, filt)) + len(select(right, filt))
            wrong = [m for m in (actual - 2, actual - 1, actual + 1, actual + 2) if 0 <= m <= 12]
            st["n"] = actual if label else rng.choice(wrong)
        if evaluate_statement(left, right, st) == label:
            return st
    return None


def make_statements(
    rng: random.Random, left: SceneGraph, right: SceneGraph, k: int
) -> list[Statement]:
    """k statements about a (left, right) pair; truth values alternate in a random order and
    each statement kind is searched for the wanted truth value, so no kind predicts it."""
    ph = Phrasing(rng)
    filters = _statement_filters(rng, left, right)
    out: list[Statement] = []
    labels: list[bool] = []
    for _ in range(k):
        if not labels:
            labels = rng.sample([True, False], 2)
        label = labels.pop()
        # "total" can always be made true or false, so the search ends
        for op in [*rng.sample(NLVR_OPS, len(NLVR_OPS)), "total"]:
            st = _statement(rng, left, right, op, label, filters)
            if st is not None:
                out.append(Statement(statement_text(ph, st), label, st))
                break
    return out
