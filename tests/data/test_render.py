"""The renderer: shapes fit their enclosing circle, and pixels and panoptic maps agree."""

from __future__ import annotations

import numpy as np
import pytest

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
