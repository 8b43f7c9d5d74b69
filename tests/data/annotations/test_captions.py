"""Captions state only facts that are true of the pixels (tests/data/world_reference.py)."""

from __future__ import annotations

import json
from collections import Counter

from world_reference import fact_value, worlds


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
