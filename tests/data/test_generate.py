"""World generation: determinism, file layout, idempotent CLI, atomic writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from ash_neuro.config import WorldConfig
from ash_neuro.data import generate as generate_module
from ash_neuro.data.generate import generate_world
from ash_neuro.data.scene import SPLITS
from ash_neuro.data.tokenizer import tokenizer_path_for
from ash_neuro.data.world_file import FORMAT, TABLES, VERSION, content_config

SMALL = dict(n_train=40, n_val=10, n_test=10, n_compositional=10, image_size=32)
CLI_OVERRIDES = [f"world.{k}={v}" for k, v in SMALL.items()] + ["world.workers=1"]


def _contents(path: Path) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path, "r") as f:

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = obj.asstr()[...] if obj.dtype.kind == "O" else obj[...]

        f.visititems(visit)
    return out


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name], b[name]), name


def test_same_seed_same_arrays_regardless_of_workers(tmp_path):
    one = tmp_path / "one.h5"
    two = tmp_path / "two.h5"
    generate_world(WorldConfig(seed=1, workers=1, **SMALL), one)
    # CHUNK_IMAGES smaller than a split: several chunks, spread over two processes
    generate_module.CHUNK_IMAGES, saved = 8, generate_module.CHUNK_IMAGES
    try:
        generate_world(WorldConfig(seed=1, workers=2, **SMALL), two)
    finally:
        generate_module.CHUNK_IMAGES = saved
    _assert_same(_contents(one), _contents(two))
    assert tokenizer_path_for(one).read_text() == tokenizer_path_for(two).read_text()


def test_different_seed_different_world(tmp_path):
    generate_world(WorldConfig(seed=1, workers=1, **SMALL), tmp_path / "a.h5")
    generate_world(WorldConfig(seed=2, workers=1, **SMALL), tmp_path / "b.h5")
    a, b = _contents(tmp_path / "a.h5"), _contents(tmp_path / "b.h5")
    assert not np.array_equal(a["train/images"], b["train/images"])
    assert not np.array_equal(a["train/captions/text"], b["train/captions/text"])


def test_file_layout(tiny_world):
    with h5py.File(tiny_world, "r") as f:
        assert f.attrs["format"] == FORMAT and f.attrs["version"] == VERSION
        config = json.loads(f.attrs["world_config"])
        vocab = json.loads(f.attrs["vocabularies"])
        assert config["image_size"] == 32 and f.attrs["seed"] == config["seed"]
        assert {"shapes", "colours", "sizes", "answers", "ve_labels", "vqa_families"} <= set(vocab)
        assert vocab["ve_labels"] == ["entailment", "neutral", "contradiction"]
        for split in SPLITS:
            g = f[split]
            n = g.attrs["n_images"]
            assert n == config[f"n_{split}"]
            assert g["images"].shape == (n, 32, 32, 3) and g["images"].dtype == np.uint8
            assert g["instance_map"].shape == g["class_map"].shape == (n, 32, 32)
            for table, columns in TABLES.items():
                lengths = {len(g[table][c]) for c in columns}
                assert len(lengths) == 1, f"{split}/{table} columns differ in length"
                for column, (dtype, shape) in columns.items():
                    ds = g[table][column]
                    assert ds.shape[1:] == shape
                    assert ds.dtype.kind == "O" if dtype.kind == "O" else ds.dtype == dtype
            assert len(g["captions/text"]) == 5 * n
            assert len(g["nlvr/text"]) == 2 * (n // 2)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ash_neuro.data.generate", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_is_idempotent_and_regenerates_on_change(tmp_path):
    out = tmp_path / "w" / "world.h5"
    first = run_cli("--out", str(out), *CLI_OVERRIDES)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"world: wrote {out}") and "images/s" in first.stdout
    assert out.is_file() and tokenizer_path_for(out).is_file()
    before = out.stat().st_mtime_ns

    second = run_cli("--out", str(out), *CLI_OVERRIDES)
    assert second.returncode == 0, second.stderr
    assert second.stdout == f"world: {out} is up to date (seed 0, 70 images), reusing\n"
    assert out.stat().st_mtime_ns == before

    # workers do not change the content: still reused
    third = run_cli("--out", str(out), *CLI_OVERRIDES, "world.workers=2")
    assert "reusing" in third.stdout

    changed = run_cli("--out", str(out), *CLI_OVERRIDES, "world.seed=5")
    assert changed.returncode == 0
    assert "another config; regenerating" in changed.stdout and "wrote" in changed.stdout
    assert json.loads(h5py.File(out, "r").attrs["world_config"])["seed"] == 5
    assert [p.name for p in out.parent.iterdir()] == sorted(
        [out.name, tokenizer_path_for(out).name]
    ) or {p.name for p in out.parent.iterdir()} == {out.name, tokenizer_path_for(out).name}


@pytest.mark.parametrize("content", [b"not an hdf5 file at all", "foreign-hdf5"])
def test_corrupt_or_foreign_file_is_regenerated(tmp_path, content):
    out = tmp_path / "world.h5"
    if content == "foreign-hdf5":
        with h5py.File(out, "w") as f:
            f["x"] = np.arange(3)
    else:
        out.write_bytes(content)
    result = generate_world(WorldConfig(workers=1, **SMALL), out)
    assert not result.reused and len(result.notes) == 1
    assert "regenerating" in result.notes[0] and "\n" not in result.notes[0]
    assert h5py.File(out, "r").attrs["format"] == FORMAT


def test_missing_tokenizer_is_rebuilt_without_regenerating(tmp_path):
    out = tmp_path / "world.h5"
    cfg = WorldConfig(workers=1, **SMALL)
    generate_world(cfg, out)
    text = tokenizer_path_for(out).read_text()
    tokenizer_path_for(out).unlink()
    result = generate_world(cfg, out)
    assert result.reused and "tokenizer" in result.notes[0]
    assert tokenizer_path_for(out).read_text() == text


def test_interrupted_generation_leaves_the_old_world_and_no_temporary_file(tmp_path, monkeypatch):
    out = tmp_path / "world.h5"
    generate_world(WorldConfig(workers=1, **SMALL), out)
    before = _contents(out)

    def boom(item):
        raise KeyboardInterrupt

    monkeypatch.setattr(generate_module, "_make_chunk", boom)
    with pytest.raises(KeyboardInterrupt):
        generate_world(WorldConfig(seed=9, workers=1, **SMALL), out)
    _assert_same(before, _contents(out))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [out.name, tokenizer_path_for(out).name]
    )


def test_content_config_ignores_where_and_how_a_world_is_made():
    a = WorldConfig(path="a.h5", workers=1)
    b = WorldConfig(path="b.h5", workers=4)
    assert content_config(a) == content_config(b)
    assert content_config(a) != content_config(WorldConfig(seed=1))


@pytest.mark.parametrize(
    "override, message",
    [("world.image_size=8", "image_size"), ("world.n_train=-1", "n_train"),
     ("world.workers=0", "workers")],
)  # fmt: skip
def test_cli_bad_config_is_one_line(tmp_path, override, message):
    result = run_cli("--out", str(tmp_path / "w.h5"), override)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
    assert not (tmp_path / "w.h5").exists()


def test_a_tokenizer_left_from_another_world_is_noticed_and_rebuilt(tmp_path):
    """World and tokenizer are written one after the other; a generation killed between leaves
    a pair that does not belong together. The world names its tokenizer's fingerprint: loading
    refuses a foreign tokenizer in one line, and the next generation rebuilds it."""
    import shutil

    from ash_neuro.data.tokenizer import load_tokenizer, load_world_tokenizer
    from ash_neuro.errors import AshError

    ours, theirs = tmp_path / "a" / "world.h5", tmp_path / "b" / "world.h5"
    generate_world(WorldConfig(seed=1, workers=1, **SMALL), ours)
    generate_world(WorldConfig(seed=2, workers=1, vocab_size=150, **SMALL), theirs)
    own_ids = load_world_tokenizer(ours)("a red cube")["input_ids"]
    shutil.copy(tokenizer_path_for(theirs), tokenizer_path_for(ours))
    assert load_tokenizer(tokenizer_path_for(ours))("a red cube")["input_ids"] != own_ids
    with pytest.raises(AshError, match=r"is not the tokenizer .*world.h5 was written with"):
        load_world_tokenizer(ours)
    result = generate_world(WorldConfig(seed=1, workers=1, **SMALL), ours)
    assert result.reused and "rebuilt the missing or foreign tokenizer" in result.notes[0]
    assert load_world_tokenizer(ours)("a red cube")["input_ids"] == own_ids
