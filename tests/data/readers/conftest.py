"""A tokenizer for batching reader output (fitted to a few words; no world needed)."""

from __future__ import annotations

import pytest

from ash_neuro.data.tokenizer import load_tokenizer, save_tokenizer, train_tokenizer

CORPUS = ["a red cube on the left of two dogs", "is there a cat? how many giraffes?"]


@pytest.fixture(scope="session")
def tokenizer(tmp_path_factory):
    path = tmp_path_factory.mktemp("tokenizer") / "readers.tokenizer.json"
    save_tokenizer(train_tokenizer(CORPUS, vocab_size=120), path)
    return load_tokenizer(path)
