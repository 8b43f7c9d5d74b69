"""The tokenizer a checkpoint carries: `tokenizer_record` and back encode the same ids."""

from __future__ import annotations

import json

import pytest
import torch

from ash_neuro.checkpoint import load_checkpoint, save_checkpoint
from ash_neuro.data.tokenizer import (
    load_tokenizer,
    tokenizer_from_record,
    tokenizer_path_for,
    tokenizer_record,
)
from ash_neuro.errors import AshError

TEXTS = [
    "a red cube left of the blue sphere",
    "How many SMALL cylinders are there?",
    "zyxwv qqq words the world never said",
    "",
]


@pytest.fixture
def tokenizer(tiny_world):
    return load_tokenizer(tokenizer_path_for(tiny_world))


def test_the_record_is_plain_strings_and_survives_a_safe_checkpoint(tokenizer, tmp_path):
    record = tokenizer_record(tokenizer)
    assert json.loads(json.dumps(record)) == record  # nothing but strings, numbers, dicts
    assert record["special_tokens"] == {
        "pad_token": "[PAD]",
        "unk_token": "[UNK]",
        "cls_token": "[CLS]",
        "sep_token": "[SEP]",
        "mask_token": "[MASK]",
    }
    assert record["model_max_length"] == 512
    path = save_checkpoint({"text": {"tokenizer": record}}, tmp_path / "ckpt.pt")
    assert load_checkpoint(path)["text"]["tokenizer"] == record  # weights_only=True reads it


def test_round_trip_encodes_the_same_ids(tokenizer):
    again = tokenizer_from_record(tokenizer_record(tokenizer))
    assert len(again) == len(tokenizer)
    assert (again.pad_token_id, again.unk_token_id, again.cls_token_id) == (0, 1, 2)
    assert (again.sep_token_id, again.mask_token_id) == (3, 4)
    assert sorted(again.all_special_ids) == sorted(tokenizer.all_special_ids) == [0, 1, 2, 3, 4]
    for text in TEXTS:
        ids = tokenizer(text)["input_ids"]
        assert again(text)["input_ids"] == ids
        assert ids[0] == 2 and ids[-1] == 3  # [CLS] ... [SEP]
    # batches with padding and truncation, as the collator asks for them
    options = dict(padding=True, truncation=True, max_length=6, return_tensors="pt")
    a, b = tokenizer(TEXTS, **options), again(TEXTS, **options)
    assert torch.equal(a["input_ids"], b["input_ids"])
    assert torch.equal(a["attention_mask"], b["attention_mask"])
    assert a["input_ids"].shape == (4, 6) and a["input_ids"][3].tolist() == [2, 3, 0, 0, 0, 0]


def test_a_broken_record_is_a_one_line_error(tokenizer):
    record = tokenizer_record(tokenizer)
    for broken in ({**record, "json": "{not json"}, {"special_tokens": {}}):
        with pytest.raises(AshError, match="the stored tokenizer is not readable") as info:
            tokenizer_from_record(broken)
        assert "\n" not in str(info.value)
