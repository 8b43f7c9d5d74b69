"""Visual concepts' ground truth: a hand-written scene's words, words mined from hand-written
captions, and the targets pre-training serves from the world."""

from __future__ import annotations

import json
import re

import h5py
import numpy as np
import pytest

from ash_neuro.config import load_config
from ash_neuro.data.concepts import (
    caption_concepts,
    concept_targets,
    fold_plural,
    mine_vocabulary,
    scene_concepts,
    scene_vocabulary,
    with_concept_targets,
    with_concept_vocabulary,
)
from ash_neuro.data.datasets import CaptionDataset
from ash_neuro.data.readers import open_dataset_source
from ash_neuro.data.world_file import WorldSource
from ash_neuro.errors import ConfigError
from tests.conftest import ROOT, TINY_WORLD
from tests.data.readers import reader_fixtures


def test_a_hand_written_scene():
    scene = [
        {"colour": "red", "shape": "circle", "size": "small", "texture": "solid"},
        {"colour": "blue", "shape": "circle", "size": "large", "texture": "striped"},
        {"colour": "red", "shape": "star", "size": "small", "texture": "solid"},
    ]
    expected = {"red", "blue", "circle", "star", "small", "large", "solid", "striped"}
    assert scene_concepts(scene) == expected
    assert scene_concepts([]) == set()


def test_the_scene_vocabulary_is_every_attribute_name():
    vocabularies = {
        "colours": ["red", "blue"],
        "shapes": ["circle"],
        "sizes": ["small", "large"],
        "textures": ["solid"],
        "answers": ["yes"],
    }
    assert scene_vocabulary(vocabularies) == ["red", "blue", "circle", "small", "large", "solid"]


CAPTIONS = [
    ["A red ball left of two blue boxes.", "There is a red ball in the picture."],
    ["Two blue boxes.", "A blue box above a green cross; the picture is small."],
    ["A green cross.", "There is one green cross in the picture."],
    ["A red star."],
    ["Two crosses."],
]


def test_plurals_fold_onto_known_singulars():
    assert fold_plural("boxes", {"box"}) == "box"
    assert fold_plural("crosses", {"cross"}) == "cross"
    assert fold_plural("balls", {"ball"}) == "ball"
    assert fold_plural("cross", {"cros"}) == "cros"  # the rule is blind; only known words fold
    assert fold_plural("stars", {"moon"}) == "stars"


def test_words_mined_from_hand_written_captions():
    # images per word (plurals folded, function words out), 5 images, at most half of them (2.5):
    # picture, two, cross 3 (dropped: too common); red, blue, box, green 2;
    # above, ball, left, one, small, star 1
    assert mine_vocabulary(CAPTIONS, size=10, min_images=2, max_share=0.5) == [
        "blue",
        "box",
        "green",
        "red",
    ]
    top = mine_vocabulary(CAPTIONS, size=7, min_images=1, max_share=0.5)
    assert top == ["blue", "box", "green", "red", "above", "ball", "left"]
    assert "cross" in mine_vocabulary(CAPTIONS, size=20, min_images=1, max_share=0.6)


def test_an_images_concepts_are_the_vocabulary_words_of_its_captions():
    vocabulary = ["blue", "box", "green", "red", "two", "cross"]
    assert caption_concepts(CAPTIONS[1], vocabulary) == {"two", "blue", "box", "green", "cross"}
    assert caption_concepts(CAPTIONS[4], vocabulary) == {"two", "cross"}
    assert caption_concepts(["Nothing here."], vocabulary) == set()


def world_config(world, *extra):
    overrides = [*TINY_WORLD, f"world.path={world}", "model.concepts.kind=tagged", *extra]
    return load_config(ROOT / "configs" / "default.yaml", overrides)


def test_scene_targets_match_the_world_files_objects(tiny_world):
    cfg = world_config(tiny_world)
    source = WorldSource(tiny_world, "train")
    cfg = with_concept_vocabulary(cfg, source)
    vocabulary = cfg.model.concepts.vocabulary
    assert len(vocabulary) == 20  # 8 colours, 7 shapes, 3 sizes, 2 textures
    targets = concept_targets(cfg, source)
    assert targets.shape == (len(source), 20)
    attributes = {"colour": "colours", "shape": "shapes", "size": "sizes", "texture": "textures"}
    with h5py.File(tiny_world, "r") as f:  # read the objects table directly
        vocab = json.loads(f.attrs["vocabularies"])
        objects = {name: f["train/objects"][name][...] for name in ("image", *attributes)}
    for image in range(len(source)):
        rows = objects["image"] == image
        words = {vocab[v][i] for a, v in attributes.items() for i in objects[a][rows]}
        assert {vocabulary[j] for j in np.flatnonzero(targets[image])} == words
    assert targets.sum(axis=1).min() >= 4  # one object: colour, shape, size, texture


def test_caption_targets_and_the_pre_training_items(tiny_world):
    cfg = world_config(tiny_world, "model.concepts.source=captions", "model.concepts.min_images=2")
    source = WorldSource(tiny_world, "train")
    cfg = with_concept_vocabulary(cfg, source)
    vocabulary = cfg.model.concepts.vocabulary
    assert 0 < len(vocabulary) <= 48 and "a" not in vocabulary and "the" not in vocabulary
    targets = concept_targets(cfg, source)
    # one item per caption: an item's index is not its image's
    dataset = with_concept_targets(CaptionDataset(source, "train", caption="all"), cfg, source)
    item = dataset[7]
    image = int(item["image_id"])
    assert image != 7
    np.testing.assert_array_equal(item["concepts"], targets[image])
    captions = [r.text for r in source.captions() if r.image == image]
    assert {vocabulary[j] for j in np.flatnonzero(item["concepts"])} == caption_concepts(
        captions, vocabulary
    )
    dataset.set_epoch(1)  # reaches the caption dataset
    assert dataset.dataset.epoch == 1


def test_a_given_vocabulary_is_kept(tiny_world):
    cfg = world_config(tiny_world, "model.concepts.vocabulary=[red,circle]")
    source = WorldSource(tiny_world, "train")
    assert with_concept_vocabulary(cfg, source).model.concepts.vocabulary == ["red", "circle"]
    assert concept_targets(cfg, source).shape == (len(source), 2)


def test_a_data_set_without_scene_graphs_needs_the_captions_source(tiny_world, tmp_path):
    root = tmp_path / "coco"
    reader_fixtures.karpathy_coco(root)
    source = open_dataset_source("coco", root, "train", image_size=32)
    with pytest.raises(ConfigError, match="model.concepts.source=captions"):
        with_concept_vocabulary(world_config(tiny_world), source)
    cfg = world_config(tiny_world, "model.concepts.source=captions", "model.concepts.min_images=1")
    words = with_concept_vocabulary(cfg, source).model.concepts.vocabulary
    assert words and all(w.isalpha() and w.islower() for w in words)


def test_captions_are_mined_from_the_images_pre_training_reads(tiny_world):
    cfg = world_config(
        tiny_world,
        "model.concepts.source=captions",
        "model.concepts.min_images=2",
        "train.image_fraction=0.25",
    )
    source = WorldSource(tiny_world, "train")
    first = [[] for _ in range(24)]  # ceil(0.25 * 96)
    for record in source.captions():
        if record.image < 24:
            first[record.image].append(record.text)
    words = with_concept_vocabulary(cfg, source).model.concepts.vocabulary
    assert words == mine_vocabulary(first, 48, min_images=2, max_share=0.5)
    seen = {w for texts in first for text in texts for w in re.findall("[a-z]+", text.lower())}
    assert all(w in seen or w + "s" in seen or w + "es" in seen for w in words)
