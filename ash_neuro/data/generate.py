"""`python -m ash_neuro.data.generate`: make (or reuse) the procedural world and its tokenizer.

    python -m ash_neuro.data.generate [--config configs/default.yaml] [--out data/world.h5]
                                      [--force] [world.key=value ...]

Idempotent: a world file whose stored config and generator version match is reused (one line
says so); a missing, stale, corrupt or foreign file is (re)generated. Both files are written
to temporary names and renamed into place, so an interrupted run leaves no half-written world.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
from tqdm import tqdm

from ash_neuro.atomic import replace_atomically
from ash_neuro.config import WorldConfig, load_config
from ash_neuro.data.scene import SPLITS
from ash_neuro.data.tokenizer import (
    save_tokenizer,
    tokenizer_fingerprint,
    tokenizer_path_for,
    train_tokenizer,
    world_tokenizer_matches,
)
from ash_neuro.data.world import Chunk, make_chunk
from ash_neuro.data.world_file import (
    TEXT_COLUMNS,
    VERSION,
    WorldFileError,
    WorldWriter,
    content_config,
    read_world_info,
    split_sizes,
)
from ash_neuro.errors import ConfigError, cli_entry

CHUNK_IMAGES = 128  # images per work item (even, so NLVR pairs stay in one chunk)
MIN_IMAGE_SIZE = 24  # below this, small objects are a pixel or two wide


@dataclass(frozen=True)
class GenerationResult:
    path: Path
    reused: bool
    seed: int
    n_images: dict[str, int]
    seconds: float = 0.0
    notes: tuple[str, ...] = ()

    @property
    def total_images(self) -> int:
        return sum(self.n_images.values())

    def summary(self) -> str:
        if self.reused:
            return (
                f"world: {self.path} is up to date (seed {self.seed}, "
                f"{self.total_images} images), reusing"
            )
        splits = ", ".join(f"{s} {n}" for s, n in self.n_images.items())
        rate = self.total_images / max(self.seconds, 1e-9)
        size_mb = self.path.stat().st_size / 1e6
        return (
            f"world: wrote {self.path} (seed {self.seed}, {self.total_images} images: {splits}) "
            f"in {self.seconds:.1f} s ({rate:.0f} images/s, {size_mb:.1f} MB) "
            f"and {tokenizer_path_for(self.path)}"
        )


def check_world_config(cfg: WorldConfig) -> None:
    if cfg.image_size < MIN_IMAGE_SIZE:
        raise ConfigError(
            f"world.image_size={cfg.image_size} is too small; use at least {MIN_IMAGE_SIZE}"
        )
    for name in ("n_train", "n_val", "n_test", "n_compositional", "captions_per_image",
                 "questions_per_image", "hypotheses_per_image", "refexps_per_image",
                 "nlvr_per_pair"):  # fmt: skip
        if getattr(cfg, name) < 0:
            raise ConfigError(f"world.{name} must not be negative")
    if cfg.workers < 1:
        raise ConfigError(f"world.workers={cfg.workers} must be at least 1")
    if cfg.vocab_size < 100:
        raise ConfigError(f"world.vocab_size={cfg.vocab_size} is too small; use at least 100")


def _work_items(cfg: WorldConfig) -> list[tuple[WorldConfig, str, int, int]]:
    return [
        (cfg, split, start, min(start + CHUNK_IMAGES, n))
        for split, n in split_sizes(cfg).items()
        for start in range(0, n, CHUNK_IMAGES)
    ]


def _make_chunk(item: tuple[WorldConfig, str, int, int]) -> Chunk:
    return make_chunk(*item)


def _chunks(cfg: WorldConfig) -> Iterator[Chunk]:
    items = _work_items(cfg)
    if cfg.workers == 1 or len(items) == 1:
        yield from map(_make_chunk, items)
        return
    # spawn, not fork: the caller may hold threads (torch) that a fork would copy mid-state
    with multiprocessing.get_context("spawn").Pool(min(cfg.workers, len(items))) as pool:
        yield from pool.imap(_make_chunk, items)


def _stale_reason(cfg: WorldConfig, path: Path) -> str | None:
    """None if the file at `path` is this world; else why not ("" when there is no file)."""
    if not path.exists():
        return ""
    try:
        info = read_world_info(path)
    except WorldFileError as exc:
        return f"{exc}; regenerating"
    if info.version != VERSION:
        return (
            f"{path} was written by generator version {info.version}, not {VERSION}; regenerating"
        )
    if info.world_config != content_config(cfg):
        return f"{path} holds a world with another config; regenerating"
    return None


def _stored_texts(path: Path) -> list[str]:
    with h5py.File(path, "r") as f:
        return [
            text
            for split in SPLITS
            for table, column in TEXT_COLUMNS.items()
            for text in f[split][table][column].asstr()[...]
        ]


def generate_world(
    cfg: WorldConfig, path: str | Path | None = None, force: bool = False, progress: bool = False
) -> GenerationResult:
    """Write the world described by `cfg` to `path` (default `cfg.path`) unless it is there."""
    check_world_config(cfg)
    path = Path(path if path is not None else cfg.path)
    tokenizer_path = tokenizer_path_for(path)
    reason = "" if force else _stale_reason(cfg, path)
    if reason is None:
        notes = ()
        if not world_tokenizer_matches(path):
            save_tokenizer(train_tokenizer(_stored_texts(path), cfg.vocab_size), tokenizer_path)
            notes = (f"world: rebuilt the missing or foreign tokenizer {tokenizer_path}",)
        return GenerationResult(path, True, cfg.seed, split_sizes(cfg), notes=notes)

    notes = (f"world: {reason}",) if reason else ()
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    # The world moves into place when the block ends, after its tokenizer: a world file on
    # disk always has its tokenizer.
    with replace_atomically(path) as temporary:
        writer = WorldWriter(temporary, cfg)
        total = sum(split_sizes(cfg).values())
        with tqdm(total=total, unit="img", desc="world", disable=None if progress else True) as bar:
            for chunk in _chunks(cfg):
                writer.write_chunk(chunk)
                bar.update(len(chunk.images))
        tokenizer = train_tokenizer(writer.texts(), cfg.vocab_size)
        # the pair is written one after the other: the world names its tokenizer, so a reader
        # notices a tokenizer left from another world by a generation killed in between
        writer.file.attrs["tokenizer_fingerprint"] = tokenizer_fingerprint(tokenizer)
        writer.close()
        save_tokenizer(tokenizer, tokenizer_path)
    seconds = time.perf_counter() - start
    return GenerationResult(path, False, cfg.seed, split_sizes(cfg), seconds, notes)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m ash_neuro.data.generate",
        description="Generate the procedural vision-language world (HDF5 + tokenizer).",
    )
    parser.add_argument("--config", help="YAML config (default: built-in defaults)")
    parser.add_argument("--out", help="world file to write (default: world.path of the config)")
    parser.add_argument("--force", action="store_true", help="regenerate even if up to date")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. world.seed=1")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    if args.out:
        cfg.world.path = args.out
    result = generate_world(cfg.world, force=args.force, progress=True)
    for note in result.notes:
        print(note)
    print(result.summary())


if __name__ == "__main__":
    main()
