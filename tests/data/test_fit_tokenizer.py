"""`python -m ash_neuro.data.tokenizer`: the WordPiece fitted to a real data set's text."""

from __future__ import annotations

import subprocess
import sys

from ash_neuro.data.tokenizer import load_tokenizer, load_world_tokenizer
from tests.conftest import ROOT
from tests.data.readers.reader_fixtures import vqa_v2


def test_a_vqa_folder_gets_whole_word_tokens_for_its_own_words(tmp_path, tiny_world):
    vqa_v2(tmp_path / "vqa")
    out = tmp_path / "vqa.tokenizer.json"
    command = [
        sys.executable,
        "-m",
        "ash_neuro.data.tokenizer",
        "--config",
        str(ROOT / "configs" / "finetune.yaml"),
        "--vocab-size",
        "120",
        "--out",
        str(out),
        "data.kind=vqa_v2",
        f"data.root={tmp_path / 'vqa'}",
        "world.image_size=16",
    ]
    run = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, check=False)
    assert run.returncode == 0, run.stderr
    fitted = load_tokenizer(out)
    # "sunny" occurs once in the train questions ("Is it sunny?"): one token here, while the
    # world's tokenizer, which never saw it, spells it in pieces
    assert fitted.tokenize("Is it sunny?") == ["is", "it", "sunny", "?"]
    assert len(load_world_tokenizer(tiny_world).tokenize("sunny")) > 1
    first = out.read_bytes()
    subprocess.run(command, capture_output=True, cwd=tmp_path, check=True)
    assert out.read_bytes() == first  # deterministic: the same corpus, the same file
