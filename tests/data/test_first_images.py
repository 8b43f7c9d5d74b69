"""`train.image_fraction`: training reads only the first ceil(f * N) images of its split, the
same ones for every method and seed."""

from __future__ import annotations

import json
import math

import pytest

from ash_neuro.config import load_config
from ash_neuro.data.datasets import CaptionDataset, NLVRDataset, VQADataset, first_images
from ash_neuro.data.world_file import WorldSource
from ash_neuro.errors import AshError
from ash_neuro.train import train
from tests.conftest import ROOT, TINY_MODEL, TINY_TRAIN, TINY_WORLD


@pytest.mark.parametrize("fraction", [0.25, 0.3])
def test_captions_keep_the_first_images(tiny_world, fraction):
    dataset = CaptionDataset(tiny_world, "train")
    count = math.ceil(fraction * 96)  # the tiny world has 96 training images
    subset = first_images(dataset, fraction)
    assert len(subset) == count
    assert sorted(int(subset[i]["image_id"]) for i in range(len(subset))) == list(range(count))
    subset.set_epoch(3)  # reaches the dataset (its caption draw per epoch)
    assert dataset.epoch == 3


def test_examples_reading_any_later_image_are_left_out(tiny_world):
    source = WorldSource(tiny_world, "train")
    for dataset_class, images in (
        (NLVRDataset, lambda r: (r.image_a, r.image_b)),
        (VQADataset, lambda r: (r.image,)),
    ):
        dataset = dataset_class(source, "train")
        subset = first_images(dataset, 0.5)
        expected = [i for i, r in enumerate(dataset.records) if max(images(r)) < 48]
        assert list(subset.indices) == expected and 0 < len(expected) < len(dataset)
    assert first_images(dataset, 1.0) is dataset


def test_a_fraction_that_keeps_no_example_is_refused(tiny_world):
    nlvr = NLVRDataset(WorldSource(tiny_world, "train"), "train")
    with pytest.raises(AshError, match="train.image_fraction=0.01 keeps 1 of 96"):
        first_images(nlvr, 0.01)


def test_pre_training_on_a_quarter_of_the_images(tiny_world, tmp_path):
    overrides = [*TINY_WORLD, *TINY_MODEL, *TINY_TRAIN, f"world.path={tiny_world}"]
    overrides += ["train.image_fraction=0.25", "train.epochs=2"]
    train(load_config(ROOT / "configs" / "default.yaml", overrides), tmp_path)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(line) for line in lines if "loss/" in line]
    # 24 images make one batch of 16 per epoch: two epochs are two steps
    assert [(r["step"], r["epoch"]) for r in steps] == [(1, 0), (2, 1)]
