"""Every stored label agrees with the pixels, read independently (tests/data/world_reference.py)."""

from __future__ import annotations

import functools
import json
import re
from collections import Counter

import numpy as np
import pytest
from world_reference import ReferenceWorld, answer, fact_value, resolve, statement_value

from ash_neuro.data.language import (
    RELATION_PHRASES,
    SHAPE_WORDS,
    SIZE_WORDS,
    SUPERLATIVE_WORDS,
    TEXTURE_WORDS,
)
from ash_neuro.data.scene import SPLITS


@functools.cache
def reference(path, split: str) -> ReferenceWorld:
    return ReferenceWorld(path, split)


def worlds(path):
    return [reference(path, split) for split in SPLITS]


def test_boxes_are_tight_around_each_instance_mask(any_world):
    for world in worlds(any_world):
        stored = world.objects_table["box"]
        pixel = [o.box for scene in world.scenes for o in scene.objects]
        np.testing.assert_array_equal(stored, np.array(pixel).reshape(stored.shape))
        for i, scene in enumerate(world.scenes):
            ids = set(np.unique(world.instance_map[i]).tolist())
            assert ids - {0, 1} == {o.instance for o in scene.objects}


def test_class_map_gives_stuff_and_shape_classes(any_world):
    for world in worlds(any_world):
        classes = world.vocab["panoptic_classes"]
        for i, scene in enumerate(world.scenes):
            lut = {0: "wall", 1: "floor"} | {o.instance: o.attrs["shape"] for o in scene.objects}
            class_of = {k: classes.index(name) for k, name in lut.items()}
            expected = np.vectorize(class_of.__getitem__)(world.instance_map[i])
            np.testing.assert_array_equal(world.class_map[i], expected)
            wall_rows = np.nonzero((world.instance_map[i] == 0).any(axis=1))[0]
            floor_rows = np.nonzero((world.instance_map[i] == 1).any(axis=1))[0]
            assert wall_rows.max() < floor_rows.min(), "the wall lies above the floor"


def test_solid_objects_look_like_their_colour(any_world):
    for world in worlds(any_world):
        palette = {
            "red": (220, 40, 40), "green": (40, 175, 60), "blue": (45, 85, 225),
            "yellow": (235, 215, 40), "purple": (145, 60, 195), "orange": (245, 140, 30),
            "cyan": (40, 210, 220), "white": (245, 245, 245),
        }  # fmt: skip
        names, rgb = list(palette), np.array(list(palette.values()), dtype=float)
        for i, scene in enumerate(world.scenes):
            for o in scene.objects:
                mask = world.instance_map[i] == o.instance
                # interior pixels only: the anti-aliased rim mixes in the background
                inner = mask & np.roll(mask, 1, 0) & np.roll(mask, -1, 0)
                inner &= np.roll(mask, 1, 1) & np.roll(mask, -1, 1)
                if o.attrs["texture"] != "solid" or inner.sum() < 2:
                    continue
                mean = world.images[i][inner].mean(axis=0)
                assert names[np.argmin(((rgb - mean) ** 2).sum(1))] == o.attrs["colour"]


def test_captions_state_only_true_facts(any_world):
    for world in worlds(any_world):
        per_image = Counter()
        for row in world.rows("captions"):
            per_image[row["image"]] += 1
            scene = world.scenes[row["image"]]
            for fact in json.loads(row["program"]):
                assert fact_value(scene, fact) is True, (row["text"], fact)
        assert set(per_image.values()) == {5}
        assert len(per_image) == len(world.scenes)


def test_vqa_answers_agree_with_the_pixels(any_world):
    for world in worlds(any_world):
        answers, families = world.vocab["answers"], world.vocab["vqa_families"]
        for row in world.rows("vqa"):
            program, scene = json.loads(row["program"]), world.scenes[row["image"]]
            stored = answers[row["answer"]]
            assert answer(scene, program) == stored, (row["question"], program)
            if program["op"] in ("count", "exist"):
                # directly on the instance map: instances present whose attributes match
                present = set(np.unique(world.instance_map[row["image"]]).tolist())
                n = sum(
                    o.instance in present
                    and all(o.attrs[a] == v for a, v in program["filter"].items())
                    for o in scene.objects
                )
                assert stored == (str(n) if program["op"] == "count" else "yes" if n else "no")
            family = families[row["family"]]
            expected_family = {
                "exist": "exist",
                "count": "count",
                "same": "compare",
                "compare_size": "compare",
                "compare_count": "compare",
            }.get(program["op"])
            if program["op"] == "query":
                expected_family = (
                    "relation"
                    if "rel" in program["object"]
                    else {"colour": "query_color", "shape": "query_shape", "size": "query_size"}[
                        program["attr"]
                    ]
                )
            assert family == expected_family


def test_vqa_majority_answer_is_a_weak_baseline(world64):
    world = reference(world64, "train")
    answers, families = world.vocab["answers"], world.vocab["vqa_families"]
    table = world.tables["vqa"]
    limits = {"exist": 0.6, "count": 0.3, "query_color": 0.25, "query_shape": 0.25,
              "query_size": 0.45, "relation": 0.25, "compare": 0.6}  # fmt: skip
    for f, name in enumerate(families):
        got = Counter(table["answer"][table["family"] == f].tolist())
        assert sum(got.values()) >= 100, name
        top, count = got.most_common(1)[0]
        assert count / sum(got.values()) <= limits[name], (name, answers[top])
    overall = Counter(table["answer"].tolist())
    assert overall.most_common(1)[0][1] / len(table["answer"]) < 0.2


def test_entailment_labels_follow_from_the_scene(any_world):
    for world in worlds(any_world):
        labels = world.vocab["ve_labels"]
        for row in world.rows("ve"):
            fact = json.loads(row["program"])
            value = fact_value(world.scenes[row["image"]], fact)
            expected = {True: "entailment", None: "neutral", False: "contradiction"}[value]
            assert labels[row["label"]] == expected, (row["hypothesis"], fact)


def test_entailment_is_balanced_and_neutral_claims_are_about_present_objects(world64):
    world = reference(world64, "train")
    table = world.tables["ve"]
    shares = np.bincount(table["label"], minlength=3) / len(table["label"])
    assert np.all(np.abs(shares - 1 / 3) < 0.05)
    unrendered = 0
    for row in world.rows("ve"):
        fact = json.loads(row["program"])
        if row["label"] == 1:
            assert fact["op"] == "unrendered"
            assert world.scenes[row["image"]].matching(fact["filter"])
        unrendered += fact["op"] == "unrendered"
    # unrendered properties also appear in contradictions: no keyword gives the label away
    neutral = (table["label"] == 1).sum()
    assert neutral / unrendered < 0.85


def test_referring_expressions_pick_out_exactly_their_target(any_world):
    for world in worlds(any_world):
        for row in world.rows("refexp"):
            scene = world.scenes[row["image"]]
            found = resolve(scene, json.loads(row["program"]))
            assert found == {int(row["object"])}, row["text"]
            np.testing.assert_array_equal(row["box"], scene.objects[row["object"]].box)


def test_referring_expressions_prefer_targets_with_distractors(world64):
    world = reference(world64, "train")

    def has_distractor(scene, k):
        o = scene.objects[k]
        return any(
            j != k
            and (p.attrs["shape"] == o.attrs["shape"] or p.attrs["colour"] == o.attrs["colour"])
            for j, p in enumerate(scene.objects)
        )

    eligible = with_distractor = 0
    for row in world.rows("refexp"):
        scene = world.scenes[row["image"]]
        if any(has_distractor(scene, k) for k in range(len(scene.objects))):
            eligible += 1
            with_distractor += has_distractor(scene, int(row["object"]))
    assert eligible > 100 and with_distractor / eligible > 0.9
    counts = Counter(world.tables["refexp"]["image"].tolist())
    assert np.mean([counts[i] == 2 for i in range(len(world.scenes))]) > 0.95


def test_nlvr_statements_are_true_exactly_when_labelled(any_world):
    for world in worlds(any_world):
        for row in world.rows("nlvr"):
            a, b = int(row["image_a"]), int(row["image_b"])
            assert {a, b} == {a - a % 2, a - a % 2 + 1}, "statements compare a consecutive pair"
            value = statement_value(world.scenes[a], world.scenes[b], json.loads(row["program"]))
            assert value == bool(row["label"]), row["text"]


def _objects_key(scene):
    return [(tuple(sorted(o.attrs.items())), o.box) for o in scene.objects]


def test_nlvr_is_balanced_and_minimal_pairs_differ_in_one_object(world64):
    world = reference(world64, "train")
    table = world.tables["nlvr"]
    assert abs(table["label"].mean() - 0.5) < 0.03
    assert 0.3 < table["minimal_pair"].mean() < 0.7
    for row in world.rows("nlvr"):
        if not row["minimal_pair"]:
            continue
        a, b = (
            _objects_key(world.scenes[row["image_a"]]),
            _objects_key(world.scenes[row["image_b"]]),
        )
        if len(a) == len(b):
            assert sum(x != y for x, y in zip(a, b)) == 1
        else:
            long, short = (a, b) if len(a) > len(b) else (b, a)
            assert len(long) == len(short) + 1
            assert any(long[:k] + long[k + 1 :] == short for k in range(len(long)))


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
