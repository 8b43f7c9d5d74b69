"""Referring expressions pick out exactly their target, preferring targets with distractors."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
from world_reference import reference, resolve, worlds


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
