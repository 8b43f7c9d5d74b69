"""Checkpoints: one plain dict of tensors and primitives, written atomically, loaded safely.

A checkpoint is `torch.save` of a dict holding only tensors, numbers, strings, lists and dicts,
so that `torch.load(weights_only=True)` reads it without unpickling arbitrary objects.
Writing goes to a temporary file in the same folder, then `os.replace` (`ash_neuro.atomic`), so
a run killed mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ash_neuro.atomic import replace_atomically
from ash_neuro.errors import CheckpointError

FORMAT = "ash-neuro-checkpoint"
VERSION = 2  # 2: self-describing (kind, text, task, data; see models.factory)


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Atomically write `state` (plus format markers) to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "version": VERSION, **state}
    with replace_atomically(path) as temporary, open(temporary, "wb") as handle:
        torch.save(payload, handle)
    return path


def nonfinite_entry(weights: Mapping[str, Any]) -> str | None:
    """The first name of a floating-point tensor in `weights` holding NaN or inf, or None."""
    for name, value in weights.items():
        if torch.is_tensor(value) and value.is_floating_point() and not value.isfinite().all():
            return name
    return None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; every failure is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {path} not found; train one with `python -m ash_neuro.train`"
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile) as exc:
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        if "Weights only load failed" in text or "Unsupported global" in text:
            reason = "it holds pickled Python objects that are not loaded for safety"
        raise CheckpointError(
            f"{path} is not a readable ash-neuro checkpoint ({reason[:160]}); "
            "point to a ckpt.pt written by `python -m ash_neuro.train`"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} was not written by ash-neuro (no '{FORMAT}' marker); "
            "point to a ckpt.pt written by `python -m ash_neuro.train`"
        )
    if state.get("version") != VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {state.get('version')}, this ash-neuro reads "
            f"version {VERSION}; re-train or use the matching ash-neuro release"
        )
    bad = nonfinite_entry(state.get("model", {})) if isinstance(state.get("model"), dict) else None
    if bad is not None:
        raise CheckpointError(
            f"{path} holds non-finite weights ({bad}); it cannot be used: train again from an "
            "earlier checkpoint with a lower train.lr"
        )
    return state
