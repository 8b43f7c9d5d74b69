"""Checkpoints are atomic, safe to load, and reject foreign or corrupt files in one line."""

import pickle

import pytest
import torch

from ash_neuro.checkpoint import load_checkpoint, save_checkpoint
from ash_neuro.errors import CheckpointError


def test_round_trip(tmp_path):
    path = save_checkpoint({"model": {"w": torch.ones(2)}, "step": 3}, tmp_path / "ckpt.pt")
    state = load_checkpoint(path)
    assert state["step"] == 3 and torch.equal(state["model"]["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temp file left


def test_failed_write_keeps_previous_checkpoint(tmp_path):
    path = save_checkpoint({"step": 1}, tmp_path / "ckpt.pt")
    with pytest.raises((pickle.PicklingError, AttributeError)):
        save_checkpoint({"step": 2, "bad": lambda: None}, path)
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


class Payload:
    pass


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a checkpoint at all", "not a readable ash-neuro checkpoint"),
        (None, "was not written by ash-neuro"),
        ("pickle", "not loaded for safety"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "ckpt.pt"
    if content is None:
        torch.save({"state_dict": {}}, path)  # e.g. another program's checkpoint
    elif content == "pickle":
        torch.save({"format": "ash-neuro-checkpoint", "obj": Payload()}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")


def test_the_format_markers_are_written_and_checked(tmp_path):
    path = save_checkpoint({"kind": "pretrain"}, tmp_path / "ckpt.pt")
    raw = torch.load(path, weights_only=True)
    assert raw == {"format": "ash-neuro-checkpoint", "version": 2, "kind": "pretrain"}
    torch.save({**raw, "version": 1}, path)  # written by an older ash-neuro
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(info.value) == (
        f"{path} has checkpoint version 1, this ash-neuro reads version 2; re-train or use the "
        "matching ash-neuro release"
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_checkpoint_with_nonfinite_weights_is_refused(tmp_path, bad):
    weights = {
        "a.weight": torch.ones(2),
        "b.bias": torch.tensor([0.0, bad]),
        "steps": torch.ones(1, dtype=torch.long),
    }
    path = save_checkpoint({"model": weights}, tmp_path / "ckpt.pt")
    with pytest.raises(CheckpointError, match=r"holds non-finite weights \(b.bias\); it cannot"):
        load_checkpoint(path)
