"""The data a run reads, from its config: one split as a `records.Source`, and the data set's
identity, which every checkpoint records so that evaluating on other data is detected.

`data.kind: world` (default) with no `data.root` reads `world.path`; any other kind reads a
real data set in its own format (`ash_neuro.data.readers`) from `data.root`.

Identity: for the world, the fingerprint is a hash of what its content depends on (format
version, seed, sizes, every content option), so a world regenerated elsewhere from the same
config has the same fingerprint; for a real data set, of its kind, its root folder and the
reader options (its files are not hashed: a VQA v2 annotation file is hundreds of MB).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ash_neuro.config import Config
from ash_neuro.data.readers import open_dataset_source
from ash_neuro.data.records import Source
from ash_neuro.data.world_file import check_complete, content_config, read_world_info
from ash_neuro.errors import AshError

_SOURCES: dict[tuple, Source] = {}


@dataclass(frozen=True)
class DataIdentity:
    """Which data set: `kind` (world, vqa_v2, ...), `location` (absolute path) and a
    `fingerprint` (hex) that equal data sets share."""

    kind: str
    location: str
    fingerprint: str

    def describe(self) -> str:
        return f"{self.kind} {self.location} (fingerprint {self.fingerprint})"

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def data_location(cfg: Config) -> Path:
    """The world file, or the root folder of a real data set."""
    return Path(cfg.data.root or cfg.world.path)


def data_identity(cfg: Config) -> DataIdentity:
    """The identity of the data `cfg` reads (the world file must exist)."""
    location = data_location(cfg)
    if cfg.data.kind == "world":
        info = read_world_info(location)
        content = {"version": info.version, "seed": info.seed, "config": info.world_config}
        return DataIdentity("world", str(location.resolve()), _digest(content))
    options = {k: v for k, v in dataclasses.asdict(cfg.data).items() if k not in ("on_error",)}
    options["root"] = str(location.resolve())
    return DataIdentity(cfg.data.kind, options["root"], _digest(options))


def _existing_world(cfg: Config) -> Path:
    location = data_location(cfg)
    if not location.is_file():
        raise AshError(
            f"world file {location} not found; generate it with "
            f"`python -m ash_neuro.data.generate --out {location}` (or `make world`)"
        )
    return location


def check_world(cfg: Config) -> None:
    """When `cfg` reads the world: the file was generated from `cfg.world` (its content
    options), so that a run never trains on another world than its config describes, and no
    split of it is truncated; else a one-line error naming the first problem."""
    if cfg.data.kind != "world":
        return
    location = _existing_world(cfg)
    stored, wanted = read_world_info(location).world_config, content_config(cfg.world)
    for key in sorted(set(stored) | set(wanted)):
        if stored.get(key) != wanted.get(key):
            raise AshError(
                f"world file {location} was generated with world.{key}={stored.get(key)!r}, "
                f"this config says {wanted.get(key)!r}; regenerate it (`python -m "
                f"ash_neuro.data.generate --force` with this config) or use its config"
            )
    check_complete(location)


def configured_source(cfg: Config, split: str) -> Source:
    """One split of the configured data (`data:`): the world file, or a real data set read in
    its own format; opened once per process, with the reader's summary printed."""
    d = cfg.data
    key = (dataclasses.astuple(d), cfg.world.path, cfg.world.image_size, split)
    if key not in _SOURCES:
        location = _existing_world(cfg) if d.kind == "world" else data_location(cfg)
        options = dict(
            annotations=d.annotations,
            images=d.images,
            questions=d.questions,
            answers=d.answers,
            top_k=d.top_k,
            instances=d.instances,
        )
        source = open_dataset_source(
            d.kind,
            location,
            split,
            image_size=cfg.world.image_size,
            transform=d.transform,
            on_error=d.on_error,
            check_images=d.check_images,
            **options,
        )
        if hasattr(source, "summary"):
            print(source.summary())
        _SOURCES[key] = source
    return _SOURCES[key]


def locate_data(cfg: Config, identity: DataIdentity, given: dict) -> Config:
    """`cfg` reading its data where `identity` (a checkpoint's record) found it, as an absolute
    path, so that a command works from any directory; unless the overrides `given` (nested,
    `config.parse_overrides`) move the data or `cfg` reads another kind of data set."""
    moved = {"root", "kind"} & set(given.get("data", {})) or "path" in given.get("world", {})
    if moved or cfg.data.kind != identity.kind:
        return cfg
    if identity.kind == "world" and not cfg.data.root:
        return dataclasses.replace(
            cfg, world=dataclasses.replace(cfg.world, path=identity.location)
        )
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=identity.location))
