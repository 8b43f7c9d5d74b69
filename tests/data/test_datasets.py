"""The task datasets honour the batch contract documented in ash_neuro/data/datasets.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from ash_neuro.data.datasets import (
    CaptionDataset,
    EntailmentDataset,
    GroundingDataset,
    NLVRDataset,
    VQADataset,
    retrieval_split,
)
from ash_neuro.data.tokenizer import load_tokenizer, tokenizer_path_for

B, MAX_LEN = 4, 24


@pytest.fixture(scope="module")
def tokenizer(tiny_world):
    return load_tokenizer(tokenizer_path_for(tiny_world))


def first_batch(dataset) -> dict:
    return next(iter(DataLoader(dataset, batch_size=B, collate_fn=dataset.collator)))


def check_common(batch: dict, size: int, suffixes=("",)) -> None:
    for s in suffixes:
        assert batch[f"image{s}"].dtype == torch.float32
        assert batch[f"image{s}"].shape == (B, 3, size, size)
        assert 0.0 <= float(batch[f"image{s}"].min()) and float(batch[f"image{s}"].max()) <= 1.0
        assert batch[f"image_id{s}"].dtype == torch.int64 and batch[f"image_id{s}"].shape == (B,)
    ids, mask = batch["text_ids"], batch["text_mask"]
    assert ids.dtype == mask.dtype == torch.int64
    assert ids.shape == mask.shape and ids.shape[0] == B and ids.shape[1] <= MAX_LEN
    assert torch.equal(ids == 0, mask == 0)  # [PAD] is id 0 exactly where the mask is 0
    assert len(batch["text"]) == B and all(isinstance(t, str) for t in batch["text"])


def test_caption_batches(tiny_world, tokenizer):
    ds = CaptionDataset(tiny_world, "train", tokenizer, MAX_LEN, with_panoptic=True)
    batch = first_batch(ds)
    check_common(batch, 32)
    assert batch["instance_map"].shape == (B, 32, 32) and batch["instance_map"].dtype == torch.int64
    assert batch["object_classes"].shape == (B, 6)
    # classes are 2 + shape index on real objects, -1 on padding; maps name existing instances
    for m, classes in zip(batch["instance_map"], batch["object_classes"], strict=True):
        n = int((classes >= 0).sum())
        assert set(m.unique().tolist()) - {0, 1} == set(range(2, 2 + n))
    # [CLS] first, [SEP] last token of every caption
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    lengths = batch["text_mask"].sum(1)
    assert (batch["text_ids"][:, 0] == cls).all()
    assert all(batch["text_ids"][i, n - 1] == sep for i, n in enumerate(lengths.tolist()))


def texts(ds) -> list[str]:
    return [ds[i]["text"] for i in range(len(ds))]


def test_caption_choice_is_per_epoch_and_reproducible(tiny_world):
    a = CaptionDataset(tiny_world, "train", caption="random", seed=5)
    b = CaptionDataset(tiny_world, "train", caption="random", seed=5)
    assert len(a) == 96 and texts(a) == texts(b)
    first = texts(a)
    a.set_epoch(1)
    assert texts(a) != first  # a new epoch draws other captions of the same images
    every = CaptionDataset(tiny_world, "train", caption="all")
    assert len(every) > len(a) and set(first) <= set(texts(every))


def test_vqa_batches_with_soft_scores(tiny_world, tokenizer):
    ds = VQADataset(tiny_world, "train", tokenizer, MAX_LEN)
    batch = first_batch(ds)
    check_common(batch, 32)
    n_answers = len(ds.answers)
    assert batch["answer"].dtype == torch.int64 and batch["answer"].shape == (B,)
    assert batch["answer_scores"].dtype == torch.float32
    assert batch["answer_scores"].shape == (B, n_answers)
    # the world's answers are exact: a one-hot soft target at the answer
    expected = torch.nn.functional.one_hot(batch["answer"], n_answers).float()
    assert torch.equal(batch["answer_scores"], expected)
    assert ((batch["family"] >= 0) & (batch["family"] < len(ds.families))).all()


def test_entailment_batches(tiny_world, tokenizer):
    ds = EntailmentDataset(tiny_world, "val", tokenizer, MAX_LEN)
    batch = first_batch(ds)
    check_common(batch, 32)
    labels = torch.tensor([ds[i]["label"] for i in range(len(ds))])
    assert set(labels.tolist()) == {0, 1, 2}


def test_nlvr_batches_hold_two_different_images(tiny_world, tokenizer):
    ds = NLVRDataset(tiny_world, "train", tokenizer, MAX_LEN, with_panoptic=True)
    batch = first_batch(ds)
    check_common(batch, 32, suffixes=("", "_b"))
    assert (batch["image_id"] != batch["image_id_b"]).all()
    assert batch["instance_map_b"].shape == (B, 32, 32)
    assert set(batch["label"].tolist()) <= {0, 1}


def test_grounding_box_is_the_target_candidate(tiny_world, tokenizer):
    ds = GroundingDataset(tiny_world, "train", tokenizer, MAX_LEN)
    batch = first_batch(ds)
    check_common(batch, 32)
    assert batch["box"].shape == (B, 4) and batch["candidate_boxes"].shape == (B, 6, 4)
    assert batch["candidate_mask"].dtype == torch.bool
    rows = torch.arange(B)
    assert torch.equal(batch["candidate_boxes"][rows, batch["target_index"]], batch["box"])
    assert batch["candidate_mask"][rows, batch["target_index"]].all()
    box = batch["box"]
    assert ((box >= 0) & (box <= 1)).all() and (box[:, 2:] > box[:, :2]).all()
    assert (batch["candidate_boxes"][~batch["candidate_mask"]] == 0).all()


def test_retrieval_split_indexes_captions_both_ways(tiny_world):
    data = retrieval_split(tiny_world, "test", limit=10)
    assert data.images.shape == (10, 3, 32, 32)
    assert len(data.texts) == len(data.txt2img)
    for image, rows in enumerate(data.img2txt):
        assert rows and all(int(data.txt2img[r]) == image for r in rows)
    everything = retrieval_split(tiny_world, "test")
    assert len(everything.images) == 24
    np.testing.assert_array_equal(everything.images[:10].numpy(), data.images.numpy())
