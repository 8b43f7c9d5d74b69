"""Shared reader machinery: image transforms, box mapping, file errors, the entry point."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from reader_fixtures import SIZE, karpathy_coco, write_image

from ash_neuro.data.readers import KINDS, ReaderError, open_dataset_source
from ash_neuro.data.readers.common import ReadOptions, load_image, map_boxes, read_json


def two_halves(path, width: int = 40, height: int = 20):
    """Left half red, right half blue."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 2] = (255, 0, 0)
    pixels[:, width // 2 :] = (0, 0, 255)
    Image.fromarray(pixels).save(path)
    return path


def test_resize_stretches_to_the_square(tmp_path):
    image = load_image(two_halves(tmp_path / "a.png"), ReadOptions(SIZE))
    assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
    assert (image[:, :6] == (255, 0, 0)).all() and (image[:, -6:] == (0, 0, 255)).all()


def test_letterbox_keeps_the_aspect_ratio_and_pads_black(tmp_path):
    options = ReadOptions(SIZE, transform="letterbox")
    image = load_image(two_halves(tmp_path / "a.png"), options)  # 40x20 -> 16x8 in rows 4..12
    assert (image[:4] == 0).all() and (image[12:] == 0).all()
    assert (image[4:12, :6] == (255, 0, 0)).all() and (image[4:12, -6:] == (0, 0, 255)).all()
    boxes = np.array([[0, 0, 1, 1], [0.5, 0.5, 1, 1]], np.float32)
    np.testing.assert_allclose(
        map_boxes(boxes, 40, 20, options), [[0, 0.25, 1, 0.75], [0.5, 0.5, 1, 0.75]]
    )
    np.testing.assert_array_equal(map_boxes(boxes, 40, 20, ReadOptions(SIZE)), boxes)


def test_jpeg_is_decoded_at_reduced_size_to_the_same_colours(tmp_path):
    path = write_image(tmp_path / "big.jpg", 3, size=(400, 300))
    image = load_image(path, ReadOptions(SIZE))
    assert image.shape == (SIZE, SIZE, 3)
    assert np.abs(image.astype(int) - image[0, 0].astype(int)).max() <= 2  # still solid


def test_unreadable_image_names_the_file(tmp_path):
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"not an image")
    with pytest.raises(ReaderError, match=r"cannot read image .*broken\.jpg"):
        load_image(path, ReadOptions(SIZE))
    with pytest.raises(ReaderError, match=r"image .*gone\.png not found"):
        load_image(tmp_path / "gone.png", ReadOptions(SIZE))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_size": 0}, "image_size=0"),
        ({"image_size": 8, "transform": "crop"}, "transform='crop': choose one of resize"),
        ({"image_size": 8, "on_error": "warn"}, "on_error='warn': choose one of skip, stop"),
    ],
)
def test_options_validate_themselves(kwargs, message):
    with pytest.raises(ReaderError, match=message):
        ReadOptions(**kwargs)


def test_invalid_json_names_file_and_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"images": [\n  {"split": "train",}\n]}')
    with pytest.raises(ReaderError, match=r"bad\.json:2: not valid JSON") as err:
        read_json(path, "a test file")
    assert "\n" not in str(err.value)


def test_entry_point_dispatches_and_checks_options(tmp_path):
    karpathy_coco(tmp_path)
    source = open_dataset_source(
        "coco", tmp_path, "val", image_size=SIZE, annotations="", images=None, top_k=0
    )  # unset options take the defaults, whichever kind
    assert len(source) == 1 and len(source.captions()) == 2
    with pytest.raises(ReaderError, match="coco does not take option 'top_k'; it takes"):
        open_dataset_source("coco", tmp_path, "val", image_size=SIZE, top_k=10)
    with pytest.raises(ReaderError, match="unknown data set kind 'gqa'; choose one of world"):
        open_dataset_source("gqa", tmp_path, "val", image_size=SIZE)
    with pytest.raises(ReaderError, match="coco: give image_size"):
        open_dataset_source("coco", tmp_path, "val")
    with pytest.raises(ReaderError, match="coco has no split 'dev'; choose one of train"):
        open_dataset_source("coco", tmp_path, "dev", image_size=SIZE)
    assert set(KINDS) >= {"world", "coco", "flickr30k", "vqa_v2", "nlvr2", "snli_ve", "refcoco+"}


def test_missing_annotation_file_says_what_it_should_be(tmp_path):
    with pytest.raises(ReaderError) as err:
        open_dataset_source("snli_ve", tmp_path, "test", image_size=SIZE)
    message = str(err.value)
    assert (
        f"{tmp_path / 'snli_ve_test.jsonl'} not found; it should be SNLI-VE JSON lines" in message
    )
    assert "\n" not in message


def test_world_kind_opens_the_world_file(tiny_world):
    source = open_dataset_source("world", tiny_world, "val", image_size=32)
    assert len(source) == 24 and source.image(0).shape == (32, 32, 3)
    with pytest.raises(ReaderError, match="holds 32 px images, not image_size=64"):
        open_dataset_source("world", tiny_world, "val", image_size=64)
    with pytest.raises(ReaderError, match="kind world takes no options; got answers"):
        open_dataset_source("world", tiny_world, "val", answers="a.json")
