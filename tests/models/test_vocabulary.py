"""Moving a scratch BERT to a tokenizer fitted to other text (`finetune.tokenizer`)."""

from __future__ import annotations

import pytest
import torch

from ash_neuro.data.tokenizer import as_fast_tokenizer, train_tokenizer
from ash_neuro.models.vocabulary import VOCABULARY_ROWS, move_vocabulary
from tests.conftest import small_tokenizer


def test_shared_tokens_keep_their_rows_and_new_words_start_from_their_pieces():
    old = small_tokenizer()
    new = as_fast_tokenizer(train_tokenizer(["a red giraffe", "a red giraffe eats"], 60))
    width = 3
    # row i of every vocabulary tensor is (i, i, i): a mean of rows is the mean of their ids
    state = {
        VOCABULARY_ROWS[0]: torch.arange(len(old)).float().unsqueeze(1).repeat(1, width),
        VOCABULARY_ROWS[1]: torch.arange(len(old)).float().unsqueeze(1).repeat(1, width),
        VOCABULARY_ROWS[2]: torch.arange(len(old)).float(),
        "other.weight": torch.ones(2),
    }
    moved = move_vocabulary(state, old, new)
    rows = moved[VOCABULARY_ROWS[0]]
    assert rows.shape == (len(new), width)
    old_ids, new_ids = old.get_vocab(), new.get_vocab()
    # a word both know ("red") and the specials keep their rows
    for token in ("red", "[PAD]", "[MASK]"):
        assert rows[new_ids[token], 0] == old_ids[token]
    # "giraffe" is new: the old tokenizer spells it g ##i ##r ##a ##f ##f ##e
    pieces = old("giraffe", add_special_tokens=False)["input_ids"]
    assert [old.convert_ids_to_tokens(i) for i in pieces][:2] == ["g", "##i"]
    expected = sum(pieces) / len(pieces)
    assert rows[new_ids["giraffe"], 0].item() == pytest.approx(expected)
    assert moved[VOCABULARY_ROWS[2]][new_ids["giraffe"]].item() == pytest.approx(expected)
    assert torch.equal(moved["other.weight"], state["other.weight"])
