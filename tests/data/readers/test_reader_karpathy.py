"""COCO / Flickr30k Karpathy-split captions."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from reader_fixtures import (
    SIZE,
    coco_instances,
    first_batch,
    is_colour,
    karpathy_coco,
    write_image,
    write_json,
)

from ash_neuro.data.datasets import CaptionDataset, retrieval_split
from ash_neuro.data.readers import ReaderError, open_dataset_source


def open_coco(root, split, **options):
    return open_dataset_source("coco", root, split, image_size=SIZE, **options)


def test_train_includes_restval_and_reads_every_sentence(tmp_path):
    karpathy_coco(tmp_path)
    source = open_coco(tmp_path, "train")
    texts = [(r.image, r.text) for r in source.captions()]
    assert texts == [
        (0, "A red cube."),
        (0, "A cube."),
        (1, "Two dogs play."),
        (2, "A man rides a horse."),
    ]
    assert len(source) == 3
    assert [is_colour(source.image(i), code) for i, code in enumerate((0, 1, 2))] == [True] * 3
    assert source.images().shape == (3, SIZE, SIZE, 3)
    assert source.summary() == "coco train: 4 records over 3 images; nothing skipped"
    copy = pickle.loads(pickle.dumps(source))  # what DataLoader workers receive under spawn
    assert copy.captions() == source.captions() and is_colour(copy.image(2), 2)
    sizes = [len(open_coco(tmp_path, s, restval=False)) for s in ("train", "val", "test")]
    assert sizes == [2, 1, 1]


def test_flickr30k_has_no_filepath(tmp_path):
    write_image(tmp_path / "flickr30k-images" / "1000092795.jpg", 4)
    entry = {"filename": "1000092795.jpg", "split": "test", "sentences": [{"raw": "Two men."}]}
    write_json(tmp_path / "dataset_flickr30k.json", {"images": [entry], "dataset": "flickr30k"})
    source = open_dataset_source("flickr30k", tmp_path, "test", image_size=SIZE)
    assert source.captions()[0].text == "Two men." and is_colour(source.image(0), 4)


def break_coco(root) -> None:
    """Image 1's file removed; image 0's second sentence without `raw`; image 2 not an object."""
    path = karpathy_coco(root)
    data = json.loads(path.read_text())
    (root / data["images"][1]["filepath"] / data["images"][1]["filename"]).unlink()
    del data["images"][0]["sentences"][1]["raw"]
    data["images"][2] = "COCO_train2014_000000000003.jpg"
    write_json(path, data)


def test_bad_records_are_skipped_and_counted_with_their_place(tmp_path):
    break_coco(tmp_path)
    source = open_coco(tmp_path, "train")
    assert [r.text for r in source.captions()] == ["A red cube."]
    assert source.skipped == {"malformed": 2, "missing image": 1}
    path = tmp_path / "dataset_coco.json"
    assert source.problems == [
        f"{path} images[0].sentences[1]: missing `raw`",
        f"{path} images[1]: image {tmp_path}/val2014/COCO_val2014_000000000002.jpg not found",
        f"{path} images[2]: not a JSON object",
    ]
    assert source.summary() == (
        "coco train: 1 records over 1 images; skipped 3 (malformed 2, missing image 1); "
        f"first: {path} images[0].sentences[1]: missing `raw`"
    )


def test_stop_raises_one_line_at_the_first_bad_record(tmp_path):
    break_coco(tmp_path)
    with pytest.raises(ReaderError) as err:
        open_coco(tmp_path, "train", on_error="stop")
    path = tmp_path / "dataset_coco.json"
    assert str(err.value) == (
        f"{path} images[0].sentences[1]: missing `raw` (on_error='skip' skips such records)"
    )


def test_unchecked_images_fail_when_read(tmp_path):
    break_coco(tmp_path)
    source = open_coco(tmp_path, "train", check_images=False)
    assert source.skipped == {"malformed": 2} and len(source) == 2
    with pytest.raises(ReaderError, match="COCO_val2014_000000000002.jpg not found"):
        source.image(1)


def test_not_a_karpathy_file(tmp_path):
    write_json(tmp_path / "dataset_coco.json", [{"filename": "x.jpg"}])
    with pytest.raises(ReaderError, match=r"expected a JSON object with a list `images`"):
        open_coco(tmp_path, "train")


def test_caption_dataset_batches_and_retrieval_split(tmp_path, tokenizer):
    karpathy_coco(tmp_path)
    source = open_coco(tmp_path, "train")
    dataset = CaptionDataset(source, tokenizer=tokenizer, max_len=12, caption="all")
    batch = first_batch(dataset, 4)
    assert batch["image"].shape == (4, 3, SIZE, SIZE) and batch["image"].dtype == torch.float32
    assert batch["image_id"].tolist() == [0, 0, 1, 2]
    assert batch["text_ids"].shape[0] == 4 and batch["text"][3] == "A man rides a horse."
    split = retrieval_split(source, limit=2)
    assert split.images.shape == (2, 3, SIZE, SIZE) and split.img2txt == [[0, 1], [2]]


def test_coco_instances_tag_each_image_by_file_name(tmp_path):
    karpathy_coco(tmp_path)
    coco_instances(tmp_path)
    source = open_coco(tmp_path, "train", instances="instances.json")
    assert source.has_object_tags and len(source.captions()) == 4
    tags = [source.object_tags(i) for i in range(3)]  # images 1 (none), 2 (dog), 3
    assert [t.names for t in tags] == [(), (("dog",),), (("person",), ("horse",))]
    assert tags[2].instances.tolist() == [-1, -1]  # no panoptic map: located by box
    # 24x20 px: [0, 0, 12, 10] -> the top-left quarter; [6, 0, 12, 20], [0, 10, 24, 10]
    np.testing.assert_allclose(tags[1].boxes, [[0.0, 0.0, 0.5, 0.5]])
    np.testing.assert_allclose(tags[2].boxes, [[0.25, 0.0, 0.75, 1.0], [0.0, 0.5, 1.0, 1.0]])
    test = open_coco(tmp_path, "test", instances="instances.json")
    assert test.object_tags(0).names == ()  # image 5 is not in instances.json
    untagged = open_coco(tmp_path, "train")
    assert not untagged.has_object_tags
    with pytest.raises(ReaderError, match="no object tags"):
        untagged.object_tags(0)


def test_several_instance_files_and_a_malformed_annotation(tmp_path):
    karpathy_coco(tmp_path)
    data = json.loads(coco_instances(tmp_path).read_text())
    train_file = {**data, "images": [i for i in data["images"] if "train" in i["file_name"]]}
    val_file = {**data, "images": [i for i in data["images"] if "val" in i["file_name"]]}
    write_json(tmp_path / "instances_train2014.json", train_file)
    write_json(tmp_path / "instances_val2014.json", val_file)
    both = "instances_train2014.json, instances_val2014.json"
    source = open_coco(tmp_path, "train", instances=both)
    assert [source.object_tags(i).names for i in range(3)] == [
        (),
        (("dog",),),
        (("person",), ("horse",)),
    ]
    data["annotations"][0]["bbox"] = [0, 0, 12]  # image 2's dog
    write_json(tmp_path / "instances.json", data)
    source = open_coco(tmp_path, "train", instances="instances.json")
    assert source.skipped == {"malformed": 1}  # the image is dropped with its captions
    assert [r.text for r in source.captions()] == ["A red cube.", "A cube.", "A man rides a horse."]
