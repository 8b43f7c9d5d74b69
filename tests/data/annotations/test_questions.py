"""VQA answers agree with the pixels and no answer dominates a family."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
from world_reference import answer, reference, worlds


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
