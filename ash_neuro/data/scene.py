"""Scene graphs of the procedural world: vocabularies, sampling, minimal edits, hold-out.

A scene is a background (two "stuff" regions, a wall above a floor) and 1-6 non-overlapping
objects, each with a shape, a colour, a size and a texture. Positions are in pixels of the
final image. Every random choice goes through the `numpy.random.Generator` passed in, so a
scene is a pure function of its generator's seed.

The compositional split holds out a fixed set of (colour, shape) pairs, as CLEVR-CoGenT does:
they never occur in train/val/test, and every compositional scene contains at least one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ash_neuro.config import WorldConfig

SHAPES = ("circle", "square", "triangle", "diamond", "star", "hexagon", "cross")
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "cyan", "white")
SIZES = ("small", "medium", "large")
TEXTURES = ("solid", "striped")
SPLITS = ("train", "val", "test", "compositional")

# Saturated, well separated in hue; the background stays in a dull mid-grey range below.
COLOUR_RGB = np.array(
    [
        (220, 40, 40),
        (40, 175, 60),
        (45, 85, 225),
        (235, 215, 40),
        (145, 60, 195),
        (245, 140, 30),
        (40, 210, 220),
        (245, 245, 245),
    ],
    dtype=np.float32,
)
# Radius of the circle that encloses a shape, as a fraction of the image side. Successive
# sizes differ by 40% in radius (twice the area), so size classes are visually distinct.
SIZE_RADIUS = (0.075, 0.105, 0.145)
STRIPED_PROBABILITY = 0.3
# Minimum empty gap between the enclosing circles of two objects, in final pixels: keeps
# anti-aliased borders of different objects out of the same output pixel.
OBJECT_GAP = 2.0

# (colour, shape) pairs absent from train/val/test: one per colour, every shape still seen
# with at least five other colours in training.
HELD_OUT_PAIRS = (
    ("red", "star"),
    ("green", "circle"),
    ("blue", "triangle"),
    ("yellow", "square"),
    ("purple", "hexagon"),
    ("orange", "diamond"),
    ("cyan", "cross"),
    ("white", "triangle"),
)
_HELD_OUT_INDEX = frozenset((COLOURS.index(c), SHAPES.index(s)) for c, s in HELD_OUT_PAIRS)
_ALL_PAIRS = tuple((c, s) for c in range(len(COLOURS)) for s in range(len(SHAPES)))
_SEEN_PAIRS = tuple(p for p in _ALL_PAIRS if p not in _HELD_OUT_INDEX)
_HELD_OUT_PAIRS_INDEX = tuple(sorted(_HELD_OUT_INDEX))


@dataclass(frozen=True)
class SceneObject:
    """One object; attributes are indices into SHAPES, COLOURS, SIZES, TEXTURES."""

    shape: int
    colour: int
    size: int
    texture: int
    cx: float
    cy: float

    def radius(self, image_size: int) -> float:
        return SIZE_RADIUS[self.size] * image_size

    @property
    def held_out(self) -> bool:
        return (self.colour, self.shape) in _HELD_OUT_INDEX


@dataclass(frozen=True)
class Background:
    """Wall above the horizon, floor below; each a tinted grey with a linear light gradient."""

    horizon: float
    wall_rgb: tuple[float, float, float]
    floor_rgb: tuple[float, float, float]
    wall_gradient: tuple[float, float]
    floor_gradient: tuple[float, float]
    tile_period: float
    tile_contrast: float


@dataclass(frozen=True)
class Scene:
    background: Background
    objects: tuple[SceneObject, ...]


def split_allows(split: str, objects: tuple[SceneObject, ...]) -> bool:
    """Whether a scene's objects respect the split's (colour, shape) hold-out rule."""
    if split == "compositional":
        return any(o.held_out for o in objects)
    return not any(o.held_out for o in objects)


def sample_background(rng: np.random.Generator, image_size: int) -> Background:
    wall_grey, floor_grey = rng.uniform(70, 135), rng.uniform(35, 95)
    if abs(wall_grey - floor_grey) < 20:  # keep the two stuff regions visibly different
        floor_grey = wall_grey - 20 if wall_grey > 75 else wall_grey + 20
    wall = wall_grey + rng.uniform(-14, 14, 3)
    floor = floor_grey + rng.uniform(-14, 14, 3)
    return Background(
        horizon=float(rng.uniform(0.3, 0.6) * image_size),
        wall_rgb=tuple(float(v) for v in wall),
        floor_rgb=tuple(float(v) for v in floor),
        wall_gradient=tuple(float(v) for v in rng.uniform(-0.25, 0.25, 2)),
        floor_gradient=tuple(float(v) for v in rng.uniform(-0.25, 0.25, 2)),
        tile_period=float(rng.uniform(0.1, 0.25) * image_size),
        tile_contrast=float(rng.uniform(0, 10)),
    )


def _sample_attributes(rng: np.random.Generator, split: str, n: int) -> list[tuple[int, ...]]:
    """(shape, colour, size, texture) for n objects; compositional scenes get a held-out pair."""
    pairs = _ALL_PAIRS if split == "compositional" else _SEEN_PAIRS
    chosen = [pairs[i] for i in rng.integers(len(pairs), size=n)]
    if split == "compositional":
        chosen[0] = _HELD_OUT_PAIRS_INDEX[rng.integers(len(_HELD_OUT_PAIRS_INDEX))]
    sizes = rng.integers(len(SIZES), size=n)
    striped = rng.random(n) < STRIPED_PROBABILITY
    attrs = [(s, c, int(z), int(t)) for (c, s), z, t in zip(chosen, sizes, striped)]
    return [attrs[i] for i in rng.permutation(n)]


def _fits(x: float, y: float, r: float, placed: list[tuple[float, float, float]]) -> bool:
    return all((x - px) ** 2 + (y - py) ** 2 >= (r + pr + OBJECT_GAP) ** 2 for px, py, pr in placed)


def _place(
    rng: np.random.Generator,
    radii: list[float],
    image_size: int,
    fixed: list[tuple[float, float, float]] = (),
    tries: int = 60,
) -> list[tuple[float, float]] | None:
    """Rejection-sample non-overlapping centres inside the image, largest objects first."""
    placed = list(fixed)
    centres: list[tuple[float, float] | None] = [None] * len(radii)
    for i in sorted(range(len(radii)), key=lambda k: -radii[k]):
        r = radii[i]
        lo, hi = r + 1.0, image_size - 1.0 - r
        for _ in range(tries):
            x, y = rng.uniform(lo, hi, 2)
            if _fits(x, y, r, placed):
                break
        else:
            return None
        placed.append((x, y, r))
        centres[i] = (float(x), float(y))
    return centres


def _placed_objects(
    rng: np.random.Generator, attrs: list[tuple[int, ...]], image_size: int
) -> tuple[SceneObject, ...]:
    """Place objects; a crowded scene shrinks its largest object until everything fits."""
    attrs = [list(a) for a in attrs]
    failures = 0
    while True:
        radii = [SIZE_RADIUS[a[2]] * image_size for a in attrs]
        centres = _place(rng, radii, image_size)
        if centres is not None:
            return tuple(
                SceneObject(a[0], a[1], a[2], a[3], x, y) for a, (x, y) in zip(attrs, centres)
            )
        largest = max(range(len(attrs)), key=lambda k: attrs[k][2])
        if attrs[largest][2] > 0:
            attrs[largest][2] -= 1
            continue
        failures += 1
        if failures == 50:  # never seen at image_size >= 24; keeps the loop finite regardless
            attrs.pop()
            failures = 0


def sample_scene(rng: np.random.Generator, cfg: WorldConfig, split: str) -> Scene:
    """A random scene of `cfg.min_objects..cfg.max_objects` objects obeying the split's rule."""
    n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    attrs = _sample_attributes(rng, split, n)
    return Scene(
        sample_background(rng, cfg.image_size), _placed_objects(rng, attrs, cfg.image_size)
    )


EDITS = ("colour", "shape", "size", "texture", "move", "remove", "add")


def minimal_edit(
    rng: np.random.Generator, scene: Scene, cfg: WorldConfig, split: str, tries: int = 20
) -> Scene | None:
    """The scene with exactly one object changed, added or removed (an NLVR minimal pair).

    Returns None when no valid edit was found (the caller then samples a fresh scene).
    """
    size = cfg.image_size
    objects = scene.objects
    for _ in range(tries):
        edit = EDITS[rng.integers(len(EDITS))]
        k = int(rng.integers(len(objects)))
        obj = objects[k]
        others = [(o.cx, o.cy, o.radius(size)) for i, o in enumerate(objects) if i != k]
        new: tuple[SceneObject, ...] | None = None
        if edit == "colour":
            c = int(rng.integers(len(COLOURS) - 1))
            new = _replace(objects, k, colour=c + (c >= obj.colour))
        elif edit == "shape":
            s = int(rng.integers(len(SHAPES) - 1))
            new = _replace(objects, k, shape=s + (s >= obj.shape))
        elif edit == "texture":
            new = _replace(objects, k, texture=1 - obj.texture)
        elif edit == "size":
            z = int(rng.integers(len(SIZES) - 1))
            z += z >= obj.size
            if _inside(obj.cx, obj.cy, SIZE_RADIUS[z] * size, size) and _fits(
                obj.cx, obj.cy, SIZE_RADIUS[z] * size, others
            ):
                new = _replace(objects, k, size=z)
        elif edit == "move":
            centres = _place(rng, [obj.radius(size)], size, others)
            if centres is not None:
                new = _replace(objects, k, cx=centres[0][0], cy=centres[0][1])
        elif edit == "remove" and len(objects) > cfg.min_objects:
            new = objects[:k] + objects[k + 1 :]
        elif edit == "add" and len(objects) < cfg.max_objects:
            (shape, colour, z, texture), *_ = _sample_attributes(rng, split, 1)
            placed = [(o.cx, o.cy, o.radius(size)) for o in objects]
            centres = _place(rng, [SIZE_RADIUS[z] * size], size, placed)
            if centres is not None:
                (x, y), *_ = centres
                added = SceneObject(shape, colour, z, texture, x, y)
                at = int(rng.integers(len(objects) + 1))
                new = objects[:at] + (added,) + objects[at:]
        if new is not None and split_allows(split, new):
            return Scene(scene.background, new)
    return None


def _inside(x: float, y: float, r: float, size: int) -> bool:
    return r + 1.0 <= min(x, y) and max(x, y) <= size - 1.0 - r


def _replace(objects: tuple[SceneObject, ...], k: int, **changes) -> tuple[SceneObject, ...]:
    return objects[:k] + (dataclasses.replace(objects[k], **changes),) + objects[k + 1 :]
