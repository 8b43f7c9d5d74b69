"""Anchor points: the intersection of an image's object tags and a caption's words, aligned to
the caption's WordPiece tokens. Hand-written captions and scenes, hand-worked answers: the
tokenizer is the tests' small one, whose 64 tokens split most words into characters."""

from __future__ import annotations

import numpy as np
import pytest
from torch.utils.data import DataLoader

from ash_neuro.data.anchors import AnchorCollator, mentions
from ash_neuro.data.datasets import CaptionDataset, open_source
from ash_neuro.data.lexicons import COCO, WORLD
from ash_neuro.data.records import ObjectTags
from ash_neuro.data.tokenizer import load_world_tokenizer
from ash_neuro.data.world_file import WorldSource
from tests.conftest import small_tokenizer

# the world lexicon's entity indices: the 7 shapes, then the 8 colours
CIRCLE, SQUARE, HEXAGON, STAR = 0, 1, 5, 4
RED, GREEN, BLUE = 7, 8, 9
BOXES = np.array([[0.1, 0.1, 0.3, 0.3], [0.5, 0.5, 0.9, 0.7], [0.0, 0.6, 0.2, 1.0]], np.float32)
SCENE = ObjectTags(
    (("circle", "red"), ("square", "red"), ("hexagon", "blue")), np.array([2, 3, 4]), BOXES
)


class Scenes:
    """A source whose images are hand-written scenes (image i: `scenes[i]`)."""

    has_object_tags = True

    def __init__(self, *scenes: ObjectTags) -> None:
        self.scenes = scenes

    def object_tags(self, index: int) -> ObjectTags:
        return self.scenes[index]


class Untagged:
    """A source without object tags (Flickr30k, COCO without instances.json)."""

    has_object_tags = False


def collate(captions, source, anchors="tags", lexicon=WORLD, images=None) -> dict:
    images = range(len(captions)) if images is None else images
    items = [{"text": c, "image_id": np.int64(i)} for c, i in zip(captions, images)]
    return AnchorCollator(small_tokenizer(), 24, source, anchors, lexicon)(items)


def test_a_repeated_word_is_one_anchor_per_occurrence_with_its_own_tokens():
    # tokens: [CLS] a red ball left of a red b ##o ##x [SEP]
    batch = collate(["a red ball left of a red box"], Scenes(SCENE))
    assert batch["word_index"].tolist() == [[-1, 0, 1, 2, 3, 4, 5, 6, 7, 7, 7, -1]]
    assert batch["anchor_token"].tolist() == [[-1, -1, 0, 1, -1, -1, -1, 2, 3, 3, 3, -1]]
    assert batch["anchor_entity"].tolist() == [[RED, CIRCLE, RED, SQUARE]]
    # "red" names both red objects, each time; "ball" the circle, "box" the square
    expected = [[[1, 1, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]]]
    assert batch["anchor_objects"].int().tolist() == expected


def test_a_word_split_into_several_tokens_anchors_every_one_of_them():
    # tokens: [CLS] two blue h ##e ##x ##a ##g ##o ##n ##s [SEP]: "hexagons" is 8 tokens
    batch = collate(["two blue hexagons"], Scenes(SCENE))
    assert batch["anchor_token"].tolist() == [[-1, -1, 0] + [1] * 8 + [-1]]
    assert batch["anchor_entity"].tolist() == [[BLUE, HEXAGON]]
    assert batch["anchor_objects"].int().tolist() == [[[0, 0, 1], [0, 0, 1]]]


def test_a_caption_with_no_anchor_has_none():
    # "nothing here" names no entity; "a green star": neither is in the scene
    batch = collate(["nothing here", "a green star"], Scenes(SCENE, SCENE))
    assert (batch["anchor_token"] == -1).all()
    assert batch["anchor_entity"].shape == (2, 0)
    assert batch["anchor_objects"].shape == (2, 0, 3)
    assert batch["word_index"][1].tolist()[:7] == [-1, 0, 1, 2, 2, 2, 2]


def test_anchors_and_objects_are_padded_per_batch():
    one = ObjectTags((("star", "green"),), np.array([2]), BOXES[:1])
    batch = collate(["a red ball", "a green star"], Scenes(SCENE, one))
    assert batch["anchor_entity"].tolist() == [[RED, CIRCLE], [GREEN, STAR]]
    assert batch["object_mask"].tolist() == [[True, True, True], [True, False, False]]
    assert batch["object_instance"].tolist() == [[2, 3, 4], [2, -1, -1]]
    np.testing.assert_array_equal(batch["object_box"][0].numpy(), BOXES)
    np.testing.assert_array_equal(batch["object_box"][1, 1:].numpy(), 0)
    carried = batch["object_entity"]
    assert carried.shape == (2, 3, 15)
    assert carried[0].nonzero().tolist() == [[0, CIRCLE], [0, RED], [1, SQUARE], [1, RED],
                                            [2, HEXAGON], [2, BLUE]]  # fmt: skip
    assert carried[1].nonzero().tolist() == [[0, STAR], [0, GREEN]]


def test_a_name_of_several_words_is_one_anchor_the_longest_form_first():
    traffic = ObjectTags((("traffic light",),), np.array([-1]), BOXES[:1])
    # tokens: [CLS] a red t ##r ##a ##f ##f ##i ##c l ##i ##g ##h ##t [SEP]
    batch = collate(["a red traffic light"], Scenes(traffic), lexicon=COCO)
    assert batch["anchor_token"].tolist() == [[-1, -1, -1] + [0] * 12 + [-1]]
    assert batch["anchor_entity"].tolist() == [[9]]  # COCO's 10th category
    assert mentions(["the", "light"], COCO) == []
    # "teddy" alone names the teddy bear too: the two words are one anchor, not "bear" apart
    assert mentions(["a", "teddy", "bear"], COCO) == [((1, 2), 77)]
    assert mentions(["a", "bike", "and", "two", "men"], COCO) == [((1,), 1), ((4,), 0)]


def test_without_tags_every_lexicon_word_is_an_anchor_on_the_whole_image():
    captions = ["a red ball", "a green star"]
    for source, anchors in ((Untagged(), "tags"), (Scenes(SCENE, SCENE), "caption")):
        batch = collate(captions, source, anchors)
        assert batch["anchor_entity"].tolist() == [[RED, CIRCLE], [GREEN, STAR]]
        assert not batch["anchor_objects"].any()  # located nowhere: the image as a whole
    assert collate(captions, Untagged())["object_mask"].shape == (2, 0)


def test_world_tags_are_each_objects_shape_colour_instance_and_box(tiny_world):
    source = WorldSource(tiny_world, "train")
    shapes = source.vocabularies["panoptic_classes"]
    for index in range(20):
        tags = source.object_tags(index)
        instance_map, classes = source.panoptic(index)
        assert [names[0] for names in tags.names] == [shapes[c] for c in classes]
        assert all(names[1] in WORLD.entities[7:] for names in tags.names)
        for instance, box in zip(tags.instances, tags.boxes):
            rows, cols = np.nonzero(instance_map == instance)
            assert len(rows) > 0  # the instance id is the object's own segment
            size = instance_map.shape[0]
            tight = [cols.min() / size, rows.min() / size, (cols.max() + 1) / size,
                     (rows.max() + 1) / size]  # fmt: skip
            np.testing.assert_allclose(box, tight, atol=1e-6)


def test_world_anchors_name_what_their_objects_carry(tiny_world):
    """Every anchor of a batch of world captions: its tokens spell a word of its entity, and
    each of its objects carries the entity in the world's own objects table."""
    source = open_source(tiny_world, "train")
    tokenizer = load_world_tokenizer(tiny_world)
    dataset = CaptionDataset(source, "train", tokenizer, 32)
    collator = AnchorCollator(tokenizer, 32, source)
    batch = next(iter(DataLoader(dataset, batch_size=32, collate_fn=collator)))
    objects = source.table("objects")
    vocab = source.vocabularies
    count = 0
    for b in range(32):
        rows = np.nonzero(objects["image"] == int(batch["image_id"][b]))[0]
        for a, entity in enumerate(batch["anchor_entity"][b].tolist()):
            if entity < 0:
                continue
            count += 1
            word = tokenizer.decode(batch["text_ids"][b][batch["anchor_token"][b] == a])
            assert WORLD.forms[tuple(word.split())] == entity
            carried = [
                {vocab["shapes"][objects["shape"][r]], vocab["colours"][objects["colour"][r]]}
                for r in rows
            ]
            named = WORLD.entities[entity]
            expected = [named in c for c in carried]
            assert batch["anchor_objects"][b, a, : len(rows)].tolist() == expected
    assert count >= 32  # the world's captions name shapes and colours


@pytest.mark.parametrize("form", ["ball", "discs", "boxes", "rhombuses", "pluses", "stars"])
def test_the_world_lexicon_reads_the_generators_synonyms_and_plurals(form):
    shape = {"ball": CIRCLE, "discs": CIRCLE, "boxes": SQUARE, "rhombuses": 3, "pluses": 6}
    assert WORLD.forms[(form,)] == shape.get(form, STAR)
    assert ("reds",) not in WORLD.forms  # colours are not pluralised


def test_a_word_cut_by_truncation_is_read_as_what_remains_of_it():
    collator = AnchorCollator(small_tokenizer(), 6, Scenes(SCENE), lexicon=WORLD)
    batch = collator([{"text": "two blue hexagons", "image_id": np.int64(0)}])
    # max_len 6: [CLS] two blue h ##e [SEP]; "he" names nothing, "blue" stays an anchor
    assert batch["word_index"].tolist() == [[-1, 0, 1, 2, 2, -1]]
    assert batch["anchor_token"].tolist() == [[-1, -1, 0, -1, -1, -1]]
    assert batch["anchor_entity"].tolist() == [[BLUE]]
