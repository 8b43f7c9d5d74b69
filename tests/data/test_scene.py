"""Scene sampling: object counts, non-overlap, minimal edits and the compositional hold-out."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from ash_neuro.config import WorldConfig
from ash_neuro.data.scene import (
    COLOURS,
    HELD_OUT_PAIRS,
    OBJECT_GAP,
    SHAPES,
    SPLITS,
    minimal_edit,
    sample_scene,
    split_allows,
)

CFG = WorldConfig()


def _scenes(split: str, n: int = 300, cfg: WorldConfig = CFG):
    return [sample_scene(np.random.default_rng([7, i]), cfg, split) for i in range(n)]


def _assert_valid(scene, cfg: WorldConfig) -> None:
    size = cfg.image_size
    assert cfg.min_objects <= len(scene.objects) <= cfg.max_objects
    for i, a in enumerate(scene.objects):
        r = a.radius(size)
        assert r + 1 <= min(a.cx, a.cy) and max(a.cx, a.cy) <= size - 1 - r
        for b in scene.objects[i + 1 :]:
            assert np.hypot(a.cx - b.cx, a.cy - b.cy) >= r + b.radius(size) + OBJECT_GAP


@pytest.mark.parametrize("split", SPLITS)
def test_scenes_have_valid_non_overlapping_objects(split):
    scenes = _scenes(split)
    for scene in scenes:
        _assert_valid(scene, CFG)
    counts = np.bincount([len(s.objects) for s in scenes])
    assert (counts[1:] > 0).all(), "every object count from 1 to 6 occurs"


def test_held_out_pairs_leave_every_colour_and_shape_in_training():
    held = set(HELD_OUT_PAIRS)
    assert {c for c, _ in held} <= set(COLOURS) and {s for _, s in held} <= set(SHAPES)
    for colour in COLOURS:
        assert sum((colour, s) not in held for s in SHAPES) >= 5
    for shape in SHAPES:
        assert sum((c, shape) not in held for c in COLOURS) >= 5


@pytest.mark.parametrize("split", SPLITS)
def test_sampled_scenes_respect_the_hold_out(split):
    for scene in _scenes(split):
        pairs = {(COLOURS[o.colour], SHAPES[o.shape]) for o in scene.objects}
        if split == "compositional":
            assert pairs & set(HELD_OUT_PAIRS)
        else:
            assert not pairs & set(HELD_OUT_PAIRS)


def test_stored_world_respects_the_hold_out(any_world):
    held = {(COLOURS.index(c), SHAPES.index(s)) for c, s in HELD_OUT_PAIRS}
    with h5py.File(any_world, "r") as f:
        for split in SPLITS:
            objects = f[split]["objects"]
            pairs = list(zip(objects["colour"][...].tolist(), objects["shape"][...].tolist()))
            is_held = np.array([p in held for p in pairs])
            images = objects["image"][...]
            if split == "compositional":
                with_held = set(images[is_held].tolist())
                assert with_held == set(range(f[split].attrs["n_images"]))
            else:
                assert not is_held.any(), split


@pytest.mark.parametrize("split", ["train", "compositional"])
def test_minimal_edits_change_one_object_and_keep_the_rules(split):
    edited = 0
    for i, scene in enumerate(_scenes(split, 200)):
        new = minimal_edit(np.random.default_rng([8, i]), scene, CFG, split)
        if new is None:
            continue
        edited += 1
        _assert_valid(new, CFG)
        assert split_allows(split, new.objects)
        assert new.background == scene.background
        a, b = scene.objects, new.objects
        if len(a) == len(b):
            assert sum(x != y for x, y in zip(a, b)) == 1
        else:
            long, short = (a, b) if len(a) > len(b) else (b, a)
            assert len(long) == len(short) + 1
            assert any(long[:k] + long[k + 1 :] == short for k in range(len(long)))
    assert edited > 180


def test_crowded_tiny_images_still_place_every_object():
    cfg = WorldConfig(image_size=24, min_objects=6, max_objects=6)
    for scene in _scenes("train", 200, cfg):
        _assert_valid(scene, cfg)
