"""NLVR statements are true exactly when labelled; labels and minimal pairs are balanced."""

from __future__ import annotations

import json

from world_reference import reference, statement_value, worlds


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
