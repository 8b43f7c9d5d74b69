"""NLVR statements: a sentence about a (left, right) image pair and whether it is true.

Statement kinds: both, exactly_one, neither, more, same_count and total (their semantics are
in `ash_neuro/data/programs.py`). Truth values are drawn first (evenly) and each kind is
searched for a statement with that value, so no kind predicts it; filters that tell the two
images of a minimal pair apart are favoured.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ash_neuro.data.annotations.phrasing import DESCRIPTIONS, NUMBER_WORDS, Phrasing, swapped
from ash_neuro.data.programs import Filter, SceneGraph, describe, evaluate_statement, select

NLVR_OPS = ("both", "exactly_one", "neither", "more", "same_count", "total")


@dataclass(frozen=True)
class Statement:
    text: str
    label: bool
    program: dict


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
    absent = [swapped(rng, f) for f in rng.sample(present, min(3, len(present)))]
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
