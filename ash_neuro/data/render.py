"""Pure-numpy renderer: a scene to an RGB image plus its exact panoptic ground truth.

Scenes are drawn at twice the output resolution and box-filtered down (4 samples per pixel of
anti-aliasing). The instance map comes from the same drawing, so it is exact:

- instance ids: 0 wall, 1 floor (the two "stuff" regions), 2 + k object k of the scene;
- panoptic classes: 0 wall, 1 floor, 2 + shape index (objects are "things");
- an output pixel belongs to an object when at least half of its 4 samples do (objects never
  share a pixel: `scene.OBJECT_GAP` keeps them apart).

Boxes are (x0, y0, x1, y1) in output pixels, x1/y1 exclusive, tight around the instance mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ash_neuro.data.scene import COLOUR_RGB, Background, Scene

WALL, FLOOR, FIRST_OBJECT = 0, 1, 2
STUFF_CLASSES = ("wall", "floor")
NOISE_SIGMA = 3.0  # light per-pixel Gaussian noise, in 0-255 units
STRIPE_PERIOD = 0.5  # stripe width in units of the object's radius
STRIPE_SHADE = 0.5  # brightness of the dark stripes

_COS30 = np.sqrt(3.0) / 2.0
_STAR_INNER = 0.45  # inner-vertex radius of the five-pointed star
_STAR_SECTOR = 2 * np.pi / 5


@dataclass(frozen=True)
class RenderedScene:
    image: np.ndarray  # (S, S, 3) uint8
    instance_map: np.ndarray  # (S, S) uint8
    class_map: np.ndarray  # (S, S) uint8
    boxes: np.ndarray  # (n_objects, 4) int16, x0 y0 x1 y1 (x1, y1 exclusive)


# Shape masks on coordinates (u, v) normalised by the object's radius, v pointing down; each
# shape fits inside the unit circle so that non-overlapping circles mean non-overlapping shapes.
def _circle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u * u + v * v <= 1.0


def _square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) <= 0.7


def _triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # apex (0, -1), base corners (+-cos30, 0.5): below the two slanted edges, above the base
    return (v <= 0.5) & (np.sqrt(3.0) * np.abs(u) <= v + 1.0)


def _diamond(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.abs(u) + np.abs(v) <= 1.0


def _hexagon(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av = np.abs(u), np.abs(v)
    return (av <= _COS30) & (_COS30 * au + 0.5 * av <= _COS30)


def _star(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # Fold the angle (measured from the upward vertex) into one half-sector [0, pi/5]; the
    # boundary there is the edge from the outer vertex (1, 0) to the inner vertex at pi/5.
    rho = np.sqrt(u * u + v * v)
    phi = np.mod(np.arctan2(u, -v), _STAR_SECTOR)
    phi = np.minimum(phi, _STAR_SECTOR - phi)
    x, y = rho * np.cos(phi), rho * np.sin(phi)
    ix, iy = _STAR_INNER * np.cos(np.pi / 5), _STAR_INNER * np.sin(np.pi / 5)
    # inside when on the origin's side of the line (1,0)-(ix,iy)
    return (ix - 1.0) * y - iy * (x - 1.0) >= 0.0


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av = np.abs(u), np.abs(v)
    return ((au <= 0.3) & (av <= 0.9)) | ((av <= 0.3) & (au <= 0.9))


SHAPE_MASKS = (_circle, _square, _triangle, _diamond, _star, _hexagon, _cross)  # SHAPES order


def _background(bg: Background, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Background at 2x: (2S, 2S, 3) float32 colours and (2S, 2S) uint8 stuff ids."""
    coords = (np.arange(2 * size, dtype=np.float32) + 0.5) / (2 * size) - 0.5
    # 2x rows whose centre lies below the horizon are floor
    split = int(np.searchsorted((coords + 0.5) * size, bg.horizon, side="left"))
    x = coords[None, :]
    image = np.empty((2 * size, 2 * size, 3), np.float32)
    for rows, rgb, (gx, gy) in (
        (slice(0, split), bg.wall_rgb, bg.wall_gradient),
        (slice(split, None), bg.floor_rgb, bg.floor_gradient),
    ):
        light = 1.0 + gx * x + gy * coords[rows, None]
        image[rows] = light[..., None] * np.asarray(rgb, dtype=np.float32)
    # faint checkerboard tiles on the floor: stuff with texture, not a flat colour
    cells = np.floor((coords + 0.5) * size / bg.tile_period).astype(np.int32)
    tiles = ((cells[split:, None] + cells[None, :]) % 2).astype(np.float32) * bg.tile_contrast
    image[split:] += tiles[..., None]
    stuff = np.full((2 * size, 2 * size), WALL, np.uint8)
    stuff[split:] = FLOOR
    return image, stuff


def render(scene: Scene, size: int, rng: np.random.Generator) -> RenderedScene:
    """Draw `scene` at `size` x `size` pixels; `rng` supplies colour jitter and noise."""
    image2x, ids2x = _background(scene.background, size)
    for k, obj in enumerate(scene.objects):
        r = obj.radius(size)
        # window of 2x pixels that covers the enclosing circle
        x0, x1 = max(int(2 * (obj.cx - r)) - 1, 0), min(int(2 * (obj.cx + r)) + 2, 2 * size)
        y0, y1 = max(int(2 * (obj.cy - r)) - 1, 0), min(int(2 * (obj.cy + r)) + 2, 2 * size)
        u = ((np.arange(x0, x1, dtype=np.float32) + 0.5) / 2 - obj.cx) / r
        v = ((np.arange(y0, y1, dtype=np.float32) + 0.5) / 2 - obj.cy) / r
        uu, vv = np.broadcast_arrays(u[None, :], v[:, None])
        mask = SHAPE_MASKS[obj.shape](uu, vv)
        colour = COLOUR_RGB[obj.colour] * rng.uniform(0.88, 1.04) + rng.uniform(-10, 10, 3)
        colour = np.clip(colour, 0, 255).astype(np.float32)
        if obj.texture:
            stripes = np.floor((uu + vv) / STRIPE_PERIOD).astype(np.int32) % 2 == 0
            pixels = np.where(stripes[..., None], colour * STRIPE_SHADE, colour)
            image2x[y0:y1, x0:x1][mask] = pixels[mask]
        else:
            image2x[y0:y1, x0:x1][mask] = colour
        ids2x[y0:y1, x0:x1][mask] = FIRST_OBJECT + k

    image = 0.25 * (
        image2x[0::2, 0::2] + image2x[1::2, 0::2] + image2x[0::2, 1::2] + image2x[1::2, 1::2]
    )
    image += rng.standard_normal(image.shape, dtype=np.float32) * NOISE_SIGMA
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    instance_map = _downsample_ids(ids2x, size, scene.background.horizon, len(scene.objects))
    boxes = _boxes(instance_map, len(scene.objects))
    lut = np.array([WALL, FLOOR] + [FIRST_OBJECT + o.shape for o in scene.objects], dtype=np.uint8)
    return RenderedScene(image, instance_map, lut[instance_map], boxes)


def _downsample_ids(ids2x: np.ndarray, size: int, horizon: float, n_objects: int) -> np.ndarray:
    blocks = ids2x.reshape(size, 2, size, 2).transpose(0, 2, 1, 3).reshape(size, size, 4)
    object_samples = (blocks >= FIRST_OBJECT).sum(axis=-1)
    # at most one object per block (objects are OBJECT_GAP apart), so max() is its id
    object_id = blocks.max(axis=-1)
    rows = np.arange(size, dtype=np.float32) + 0.5
    stuff = np.where(rows >= horizon, FLOOR, WALL).astype(np.uint8)[:, None]
    instance_map = np.where(object_samples >= 2, object_id, stuff).astype(np.uint8)
    for k in range(n_objects):
        ident = FIRST_OBJECT + k
        if not (instance_map == ident).any():
            # an object thinner than a pixel: give it the pixel it covers most
            coverage = (blocks == ident).sum(axis=-1)
            instance_map.flat[int(np.argmax(coverage))] = ident
    return instance_map


def _boxes(instance_map: np.ndarray, n_objects: int) -> np.ndarray:
    boxes = np.zeros((n_objects, 4), dtype=np.int16)
    for k in range(n_objects):
        mask = instance_map == FIRST_OBJECT + k
        cols = np.flatnonzero(mask.any(axis=0))
        rows = np.flatnonzero(mask.any(axis=1))
        boxes[k] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes
