"""VQA questions: one image, a question program, and its answer from a fixed vocabulary.

Families: exist, count, query_color / query_shape / query_size (an object picked out by its
attributes), relation (an object picked out by a relation to another) and compare (same
attribute, bigger/smaller, more/fewer/as many). Labels are balanced by rejection sampling over
candidate programs: a family is drawn first, then an answer among the answers that family can
produce for this image, then a question with that answer.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass

from ash_neuro.data.annotations.phrasing import (
    DESCRIPTIONS,
    VALUES,
    Phrasing,
    relation_references,
    swapped,
    unique_filter,
)
from ash_neuro.data.programs import Filter, SceneGraph, answer_question, describe
from ash_neuro.data.scene import COLOURS, SHAPES, SIZES

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


@dataclass(frozen=True)
class Question:
    text: str
    family: str
    answer: str
    program: dict


def _exist_candidates(rng: random.Random, graph: SceneGraph) -> list[dict]:
    out = []
    for obj in graph.objects:
        filt = describe(obj, rng.choice(DESCRIPTIONS))
        out.append({"op": "exist", "filter": filt})
        out.append({"op": "exist", "filter": swapped(rng, filt)})
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


def _relation_candidates(rng: random.Random, graph: SceneGraph) -> list[dict]:
    attr = rng.choice(("colour", "shape", "size"))
    return [
        {"op": "query", "attr": attr, "object": ref}
        for t in range(len(graph.objects))
        for ref in relation_references(rng, graph, t, exclude=attr, cap=3)
    ]


def _compare_candidates(rng: random.Random, graph: SceneGraph) -> list[dict]:
    kind = rng.choice(("same", "compare_size", "compare_count"))
    n, out = len(graph.objects), []
    if kind == "compare_count":
        present = [{a: o.get(a)} for o in graph.objects for a in ("shape", "colour")]
        filters = present + [swapped(rng, f) for f in present]
        pairs = [(a, b) for a, b in itertools.permutations(filters, 2) if a != b]
        for a, b in rng.sample(pairs, min(len(pairs), 16)):
            how = rng.choice(("more", "fewer", "equal"))
            out.append({"op": "compare_count", "how": how, "a": a, "b": b})
        return out
    attr = rng.choice(("colour", "shape", "size")) if kind == "same" else "size"
    for i, j in itertools.permutations(range(n), 2):
        a, b = unique_filter(rng, graph, i, attr), unique_filter(rng, graph, j, attr)
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
