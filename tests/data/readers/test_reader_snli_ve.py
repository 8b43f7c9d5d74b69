"""SNLI-VE JSON lines: Flickr30k images, hypotheses and three labels."""

from __future__ import annotations

import pytest
from reader_fixtures import SIZE, first_batch, is_colour, snli_ve_record, write_image, write_jsonl

from ash_neuro.data.datasets import EntailmentDataset
from ash_neuro.data.readers import ReaderError, open_dataset_source


def test_hypotheses_labels_and_image_ids(tmp_path, tokenizer):
    for code, image_id in enumerate((3416050480, 36979)):
        write_image(tmp_path / "flickr30k_images" / f"{image_id}.jpg", code)
    other_key = snli_ve_record(0, "Nobody is there.", "contradiction")
    other_key["Flickr30k_ID"] = other_key.pop("Flickr30K_ID")
    other_key["Flickr30k_ID"] = 36979  # a number, under the lower-case key
    write_jsonl(
        tmp_path / "snli_ve_dev.jsonl",
        [
            snli_ve_record("3416050480", "A dog runs.", "entailment"),
            snli_ve_record("3416050480", "The dog is happy.", "neutral"),
            other_key,
            snli_ve_record("3416050480", "No label.", "-"),
            snli_ve_record("111", "Missing image.", "neutral"),
            {"Flickr30K_ID": "36979", "gold_label": "neutral"},
            {"gold_label": "neutral"},  # two fields missing: one bad record, one report
        ],
    )
    source = open_dataset_source("snli_ve", tmp_path, "val", image_size=SIZE)
    got = [(r.image, r.hypothesis, r.label) for r in source.entailment()]
    assert got == [(0, "A dog runs.", 0), (0, "The dog is happy.", 1), (1, "Nobody is there.", 2)]
    assert is_colour(source.image(1), 1, tolerance=8)
    path = tmp_path / "snli_ve_dev.jsonl"
    assert source.skipped == {"malformed": 3, "missing image": 1}
    assert source.problems[0] == (
        f"{path}:4: `gold_label` is '-', not one of entailment, neutral, contradiction"
    )
    assert source.problems[2:] == [
        f"{path}:6: missing `sentence2`",
        f"{path}:7: missing `Flickr30K_ID`",
    ]
    with pytest.raises(ReaderError, match=r"snli_ve_dev\.jsonl:4: `gold_label` is '-'"):
        open_dataset_source("snli_ve", tmp_path, "dev", image_size=SIZE, on_error="stop")

    batch = first_batch(EntailmentDataset(source, tokenizer=tokenizer), 3)
    assert batch["image"].shape == (3, 3, SIZE, SIZE) and batch["label"].tolist() == [0, 1, 2]
