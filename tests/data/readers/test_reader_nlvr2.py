"""NLVR2 JSON lines: image pairs named from the identifier, labels, bad lines."""

from __future__ import annotations

import pytest
import torch
from reader_fixtures import SIZE, first_batch, is_colour, nlvr2_record, write_image, write_jsonl

from ash_neuro.data.datasets import NLVRDataset
from ash_neuro.data.readers import ReaderError, open_dataset_source
from ash_neuro.data.readers.nlvr2 import pair_images


def open_nlvr2(root, split, **options):
    return open_dataset_source("nlvr2", root, split, image_size=SIZE, **options)


def test_identifier_names_the_pair():
    assert pair_images("dev-850-0-3") == ("dev-850-0-img0.png", "dev-850-0-img1.png")
    assert pair_images("test1-7-12-0") == ("test1-7-12-img0.png", "test1-7-12-img1.png")
    assert pair_images("dev-850-0") is None and pair_images("dev--0-1") is None


def dev_set(root) -> None:
    images = root / "images" / "dev"
    for code, name in enumerate(("dev-1-0-img0.png", "dev-1-0-img1.png", "dev-2-3-img0.png")):
        write_image(images / name, code)
    write_image(images / "dev-2-3-img1.png", 3)
    write_image(root / "images" / "mine" / "right.png", 4)
    write_jsonl(
        root / "dev.json",
        [
            nlvr2_record("dev-1-0-0", "There are two dogs.", "True"),
            nlvr2_record("dev-1-0-1", "There is no dog.", "False"),
            nlvr2_record("dev-2-3-0", "One image is empty.", "true", right_url="mine/right.png"),
            "",
            nlvr2_record("dev-2-3-1", "Broken label.", "maybe"),
            '{"identifier": "dev-9-9-9", "sentence": "cut off',
            nlvr2_record("dev-2", "Bad identifier.", "True"),
            nlvr2_record("dev-5-0-0", "Missing images.", "False"),
        ],
    )


def test_pairs_labels_and_explicit_local_paths(tmp_path):
    dev_set(tmp_path)
    source = open_nlvr2(tmp_path, "val")  # val is dev
    got = [(r.image_a, r.image_b, r.text, r.label) for r in source.nlvr()]
    assert got == [
        (0, 1, "There are two dogs.", 1),
        (0, 1, "There is no dog.", 0),
        (2, 3, "One image is empty.", 1),
    ]
    # web URLs are ignored; the local right_url replaces the derived right image
    assert [is_colour(source.image(i), code) for i, code in enumerate((0, 1, 2, 4))] == [True] * 4


def test_bad_lines_are_reported_with_file_and_line(tmp_path):
    dev_set(tmp_path)
    source = open_nlvr2(tmp_path, "dev")
    path = tmp_path / "dev.json"
    assert source.skipped == {"malformed": 3, "missing image": 1}
    assert source.problems[:3] == [
        f"{path}:5: `label` is 'maybe', not 'True' or 'False'",
        f"{path}:6: not valid JSON at column 41 (Unterminated string starting at)",
        f"{path}:7: identifier 'dev-2' is not <split>-<set>-<pair>-<sentence>",
    ]
    assert source.problems[3].startswith(f"{path}:8: image {tmp_path}/images/dev/dev-5-0-img0.png")
    with pytest.raises(ReaderError, match=r"dev\.json:5: `label` is 'maybe'"):
        open_nlvr2(tmp_path, "dev", on_error="stop")


def test_train_images_lie_in_their_directory(tmp_path):
    write_image(tmp_path / "images" / "train" / "12" / "train-3-1-img0.png", 5)
    write_image(tmp_path / "images" / "train" / "12" / "train-3-1-img1.png", 6)
    record = nlvr2_record("train-3-1-2", "Dogs.", False, directory="12")  # a JSON boolean
    write_jsonl(tmp_path / "train.json", [record])
    source = open_nlvr2(tmp_path, "train")
    assert source.nlvr()[0].label == 0 and is_colour(source.image(1), 6)


def test_nlvr_dataset_batches_both_images(tmp_path, tokenizer):
    dev_set(tmp_path)
    batch = first_batch(NLVRDataset(open_nlvr2(tmp_path, "dev"), tokenizer=tokenizer), 3)
    assert batch["image"].shape == batch["image_b"].shape == (3, 3, SIZE, SIZE)
    assert batch["image_id_b"].tolist() == [1, 1, 3]
    assert batch["label"].tolist() == [1, 0, 1] and batch["label"].dtype == torch.int64
