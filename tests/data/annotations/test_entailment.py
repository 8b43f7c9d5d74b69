"""Entailment labels follow from the pixels and the three classes are balanced."""

from __future__ import annotations

import json

import numpy as np
from world_reference import fact_value, reference, worlds


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
