"""World generation speed: images per second and file size, by worker count.

Generates a fresh world of `--images` images (split 80/10/5/5 like the default) into a
temporary folder for each worker count and prints a table.

    .venv/bin/python benchmarks/world_generation.py [--images 20000] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from ash_neuro.config import WorldConfig
from ash_neuro.data.generate import generate_world


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    n = args.images
    sizes = dict(n_train=n * 8 // 10, n_val=n // 10, n_test=n // 20)
    sizes["n_compositional"] = n - sum(sizes.values())
    print("| images | image size | workers | seconds | images/s | MB |")
    print("|---|---|---|---|---|---|")
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = WorldConfig(image_size=args.image_size, workers=workers, **sizes)
            result = generate_world(cfg, Path(tmp) / "world.h5")
            mb = result.path.stat().st_size / 1e6
            rate = n / result.seconds
            print(
                f"| {n} | {args.image_size} | {workers} | {result.seconds:.1f} | {rate:.0f} "
                f"| {mb:.0f} |"
            )


if __name__ == "__main__":
    main()
