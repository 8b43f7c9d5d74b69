"""RefCOCO+ refs (JSON conversion) with COCO instance boxes as candidates."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
from reader_fixtures import SIZE, colour, first_batch, is_colour, refcoco, write_json

from ash_neuro.data.datasets import GroundingDataset
from ash_neuro.data.readers import ReaderError, open_dataset_source
from ash_neuro.data.readers import refcoco as refcoco_module

# image 5 is 100x50 px; its instances in annotation order: ids 501, 502, 503
IMAGE5_BOXES = [[0.1, 0.1, 0.3, 0.3], [0.5, 0.0, 1.0, 1.0], [0.9, 0.8, 1.0, 1.0]]  # 503 clipped


def open_refcoco(root, split, **options):
    return open_dataset_source("refcoco+", root, split, image_size=SIZE, **options)


def test_refs_become_one_record_per_sentence_with_normalised_boxes(tmp_path):
    refcoco(tmp_path)
    source = open_refcoco(tmp_path, "train")
    got = [(r.image, r.text, r.target) for r in source.grounding()]
    assert got == [(0, "right half", 1), (0, "the big one", 1), (0, "small box on the left", 0)]
    for record in source.grounding():
        assert record.boxes.dtype == np.float32
        np.testing.assert_allclose(record.boxes, IMAGE5_BOXES, atol=1e-6)
    assert source.max_candidates == 3 and len(source) == 1
    assert is_colour(source.image(0), 5)
    test_a = open_refcoco(tmp_path, "testA").grounding()
    assert len(test_a) == 1 and test_a[0].boxes.tolist() == [[0.0, 0.0, 1.0, 1.0]]


def test_letterbox_maps_the_boxes_with_the_image(tmp_path):
    refcoco(tmp_path)
    source = open_refcoco(tmp_path, "train", transform="letterbox")
    # 100x50 fills rows 4..12 of 16: y' = 0.25 + y / 2
    expected = [[0.1, 0.3, 0.3, 0.4], [0.5, 0.25, 1.0, 0.75], [0.9, 0.65, 1.0, 0.75]]
    np.testing.assert_allclose(source.grounding()[0].boxes, expected, atol=1e-6)
    image = source.image(0)
    assert (image[:4] == 0).all() and (image[12:] == 0).all()
    assert np.abs(image[4:12].astype(int) - colour(5)).max() <= 6


def test_unknown_split_lists_the_splits_of_the_file(tmp_path):
    refcoco(tmp_path)
    with pytest.raises(ReaderError, match=r"has no refs of split 'test'; it has testA, train, val"):
        open_refcoco(tmp_path, "test")


def test_bad_refs_and_boxes_are_reported(tmp_path):
    refs = refcoco(tmp_path)
    refs[0]["ann_id"] = 601  # an instance of another image
    refs[2]["image_id"] = 77  # not in instances.json
    refs.append({"ref_id": 4, "split": "train", "image_id": 5, "ann_id": 501, "sentences": [{}]})
    write_json(tmp_path / "refs(unc).json", refs)
    source = open_refcoco(tmp_path, "train")
    path = tmp_path / "refs(unc).json"
    assert source.grounding() == [] and source.skipped == {"malformed": 3}
    assert source.problems == [
        f"{path} [0]: ann_id 601 is not an instance of image 5 in {tmp_path / 'instances.json'}",
        f"{path} [2]: image_id 77 has no valid entry in {tmp_path / 'instances.json'} images[]",
        f"{path} [4].sentences[0]: missing `sent`",
    ]
    instances = json.loads((tmp_path / "instances.json").read_text())
    instances["annotations"][2]["bbox"] = [50, 0, 50]
    write_json(tmp_path / "instances.json", instances)
    with pytest.raises(ReaderError) as err:
        open_refcoco(tmp_path, "val", on_error="stop")
    assert str(err.value) == (
        f"{path} [3]: {tmp_path / 'instances.json'} annotations[2]: needs an integer `id` and "
        "`bbox` [x, y, w, h], got [50, 0, 50] (on_error='skip' skips such records)"
    )


def test_missing_refs_point_to_the_conversion(tmp_path):
    refcoco(tmp_path)
    (tmp_path / "refs(unc).json").unlink()
    expected = r"refs\(unc\)\.json not found; it should be the refs converted to JSON .* conversion"
    with pytest.raises(ReaderError, match=expected):
        open_refcoco(tmp_path, "train")


def test_the_documented_conversion_command_works(tmp_path):
    refs = refcoco(tmp_path)
    (tmp_path / "refs(unc).json").unlink()
    with open(tmp_path / "refs(unc).p", "wb") as f:
        pickle.dump(refs, f, protocol=2)  # our own pickle: the trusted copy the docs speak of
    doc = refcoco_module.__doc__
    start = doc.index("python -c")
    command = doc[start : doc.index("\n\n", start)].replace("python", sys.executable, 1)
    subprocess.run(command, shell=True, cwd=tmp_path, check=True)
    assert json.loads((tmp_path / "refs(unc).json").read_text()) == refs
    assert len(open_refcoco(tmp_path, "train").grounding()) == 3


def test_grounding_dataset_batches_all_candidates(tmp_path, tokenizer):
    refcoco(tmp_path)
    source = open_refcoco(tmp_path, "train")
    dataset = GroundingDataset(source, tokenizer=tokenizer, max_instances=4)
    batch = first_batch(dataset, 3)
    assert batch["candidate_boxes"].shape == (3, 4, 4)
    assert batch["candidate_mask"][0].tolist() == [True, True, True, False]
    assert batch["target_index"].tolist() == [1, 1, 0]
    np.testing.assert_allclose(batch["box"][2].numpy(), IMAGE5_BOXES[0], atol=1e-6)


def test_each_image_is_tagged_with_its_instances_categories(tmp_path):
    refcoco(tmp_path)
    source = open_refcoco(tmp_path, "train")
    tags = source.object_tags(0)
    # categories[] names only id 1 (person): the others keep their boxes, with no name
    assert tags.names == (("person",), (), ("person",))
    np.testing.assert_allclose(tags.boxes, IMAGE5_BOXES, atol=1e-6)
    assert tags.instances.tolist() == [-1, -1, -1]
