"""The renderer: shapes fit their enclosing circle, and pixels and panoptic maps agree, also
as stored in a generated world (boxes, class map and colours read back from the file)."""

from __future__ import annotations

import numpy as np
import pytest
from world_reference import worlds

from ash_neuro.config import WorldConfig
from ash_neuro.data.render import FIRST_OBJECT, SHAPE_MASKS, render
from ash_neuro.data.scene import SHAPES, sample_scene


@pytest.mark.parametrize("shape", SHAPES)
def test_each_shape_fills_part_of_its_unit_circle_and_no_more(shape):
    grid = np.linspace(-1.2, 1.2, 241, dtype=np.float32)
    u, v = np.meshgrid(grid, grid)
    mask = SHAPE_MASKS[SHAPES.index(shape)](u, v)
    assert not (mask & (u * u + v * v > 1.0 + 1e-6)).any()
    area = mask.mean() * 2.4**2
    assert 0.25 * np.pi < area <= np.pi


def test_shapes_have_distinct_silhouettes():
    grid = np.linspace(-1, 1, 101, dtype=np.float32)
    u, v = np.meshgrid(grid, grid)
    masks = [m(u, v) for m in SHAPE_MASKS]
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            assert (masks[i] != masks[j]).mean() > 0.05, (SHAPES[i], SHAPES[j])


@pytest.mark.parametrize("size", [32, 64, 96])
def test_render_outputs_agree_with_the_scene(size):
    cfg = WorldConfig(image_size=size)
    for i in range(20):
        rng = np.random.default_rng([5, i])
        scene = sample_scene(rng, cfg, "train")
        out = render(scene, size, rng)
        assert out.image.shape == (size, size, 3) and out.image.dtype == np.uint8
        assert out.instance_map.shape == out.class_map.shape == (size, size)
        n = len(scene.objects)
        assert set(np.unique(out.instance_map)) - {0, 1} == set(
            range(FIRST_OBJECT, FIRST_OBJECT + n)
        )
        for k, obj in enumerate(scene.objects):
            ys, xs = np.nonzero(out.instance_map == FIRST_OBJECT + k)
            x0, y0, x1, y1 = out.boxes[k]
            assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            # the mask sits inside the object's enclosing circle (plus a pixel of rounding)
            r = obj.radius(size)
            assert (np.hypot(xs + 0.5 - obj.cx, ys + 0.5 - obj.cy) <= r + 1).all()
            assert (out.class_map[ys, xs] == FIRST_OBJECT + obj.shape).all()


def test_render_is_deterministic_given_the_generator():
    cfg = WorldConfig()
    scene = sample_scene(np.random.default_rng(1), cfg, "train")
    a = render(scene, 64, np.random.default_rng(2))
    b = render(scene, 64, np.random.default_rng(2))
    c = render(scene, 64, np.random.default_rng(3))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.instance_map, b.instance_map)
    assert not np.array_equal(a.image, c.image), "noise and colour jitter come from the generator"
    assert np.array_equal(a.instance_map, c.instance_map)


# The stored world: its objects table and panoptic maps against its pixels.


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
