"""Every sentence names what its program evaluates, in the shared phrasing vocabulary."""

from __future__ import annotations

import json
import re

import pytest
from world_reference import reference

from ash_neuro.data.annotations.phrasing import (
    RELATION_PHRASES,
    SHAPE_WORDS,
    SIZE_WORDS,
    SUPERLATIVE_WORDS,
    TEXTURE_WORDS,
)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def _mentions(text: str, filt: dict) -> bool:
    words = _words(text)
    synonyms = {"shape": SHAPE_WORDS, "size": SIZE_WORDS, "texture": TEXTURE_WORDS}
    for attr, value in filt.items():
        options = synonyms[attr][value] if attr in synonyms else (value,)
        if not any(
            w == o or w.startswith(o) and len(w) <= len(o) + 2 for o in options for w in words
        ):
            return False
    return True


def _filters_and_words(program: dict):
    """(filter, extra words) pairs a program's sentence must express."""
    if "object" in program:
        yield from _filters_and_words(program["object"])
    for key in ("filter", "a", "b", "anchor"):
        value = program.get(key)
        if isinstance(value, dict):
            yield from _filters_and_words(value) if "filter" in value else [(value, ())]
    if "rel" in program and "anchor" in program:
        yield {}, RELATION_PHRASES[program["rel"]]
    if "superlative" in program:
        yield {}, SUPERLATIVE_WORDS[program["superlative"]]


@pytest.mark.parametrize(
    "table, column",
    [("vqa", "question"), ("ve", "hypothesis"), ("refexp", "text"), ("nlvr", "text")],
)
def test_sentences_say_what_their_program_evaluates(any_world, table, column):
    world = reference(any_world, "train")
    for row in world.rows(table):
        text, program = row[column], json.loads(row["program"])
        for filt, phrases in _filters_and_words(program):
            assert _mentions(text, filt), (text, filt)
            assert not phrases or any(p in text for p in phrases), (text, phrases)
