"""Writers of tiny data sets in each real format, for the reader tests.

Every image is a solid colour chosen by a small integer `code`, so a test can tell which file
an image index was read from (JPEG blurs colours by a few levels: compare with a tolerance).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 16  # the image size the tests read at


def colour(code: int) -> tuple[int, int, int]:
    return (40 * (code % 6) + 20, 30 * (code % 7) + 10, 200 - 25 * (code % 8))


def write_image(path: Path, code: int, size: tuple[int, int] = (24, 20)) -> Path:
    """A solid `colour(code)` image of (width, height) `size`, PNG or JPEG by suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour(code)).save(path)
    return path


def is_colour(image: np.ndarray, code: int, tolerance: int = 6) -> bool:
    diff = np.abs(image.astype(int) - np.array(colour(code)))
    return image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8 and diff.max() <= tolerance


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
    return path


def write_jsonl(path: Path, lines: list) -> Path:
    """Objects become JSON lines; strings are written as they are (for malformed lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = [line if isinstance(line, str) else json.dumps(line) for line in lines]
    path.write_text("\n".join(text) + "\n")
    return path


def karpathy_coco(root: Path) -> Path:
    """dataset_coco.json: 2 train, 1 restval, 1 val, 1 test image (codes 0-4)."""
    entries = [
        ("train2014", "COCO_train2014_000000000001.jpg", "train", ["A red cube.", "A cube."]),
        ("val2014", "COCO_val2014_000000000002.jpg", "restval", ["Two dogs play."]),
        ("train2014", "COCO_train2014_000000000003.jpg", "train", ["A man rides a horse."]),
        ("val2014", "COCO_val2014_000000000004.jpg", "val", ["A cat.", "A cat on a mat."]),
        ("val2014", "COCO_val2014_000000000005.jpg", "test", ["A bus."]),
    ]
    images = []
    for code, (folder, name, split, sentences) in enumerate(entries):
        write_image(root / folder / name, code)
        images.append(
            {
                "filepath": folder,
                "filename": name,
                "imgid": code,
                "split": split,
                "sentences": [{"raw": s, "tokens": s.lower().split()} for s in sentences],
                "cocoid": code + 1,
            }
        )
    return write_json(root / "dataset_coco.json", {"images": images, "dataset": "coco"})


def coco_instances(root: Path) -> Path:
    """instances.json for `karpathy_coco`'s images (24x20 px): none for image 1, a dog in
    image 2, a person and a horse in image 3, a cat in image 4; image 5 is not listed."""
    names = [f"COCO_{f}_{i:012d}.jpg" for f, i in (("train2014", 1), ("val2014", 2),
             ("train2014", 3), ("val2014", 4))]  # fmt: skip
    images = [{"id": i + 1, "file_name": n, "width": 24, "height": 20} for i, n in enumerate(names)]
    annotations = [
        {"id": 20, "image_id": 2, "bbox": [0, 0, 12, 10], "category_id": 18},
        {"id": 30, "image_id": 3, "bbox": [6, 0, 12, 20], "category_id": 1},
        {"id": 31, "image_id": 3, "bbox": [0, 10, 24, 10], "category_id": 19},
        {"id": 40, "image_id": 4, "bbox": [12, 10, 12, 10], "category_id": 17},
    ]
    categories = [
        {"id": 1, "name": "person"},
        {"id": 17, "name": "cat"},
        {"id": 18, "name": "dog"},
        {"id": 19, "name": "horse"},
    ]
    data = {"images": images, "annotations": annotations, "categories": categories}
    return write_json(root / "instances.json", data)


def vqa_v2(root: Path) -> None:
    """train2014: images 1, 2 (codes 1, 2); val2014: image 7 (code 7)."""

    def answers(*given: str) -> list[dict]:
        return [
            {"answer": a, "answer_confidence": "yes", "answer_id": i + 1}
            for i, a in enumerate(given)
        ]

    train_q = [
        {"image_id": 1, "question": "What color is the cube?", "question_id": 10},
        {"image_id": 1, "question": "Is there a dog?", "question_id": 11},
        {"image_id": 2, "question": "How many cats?", "question_id": 20},
        {"image_id": 2, "question": "Is it sunny?", "question_id": 21},
    ]
    train_a = [
        {"question_id": 10, "image_id": 1, "answer_type": "other", "question_type": "what color",
         "multiple_choice_answer": "red",
         "answers": answers(*["red"] * 4, "blue", "blue", "green", *["Pink "] * 3)},
        {"question_id": 11, "image_id": 1, "answer_type": "yes/no", "question_type": "is there",
         "multiple_choice_answer": "yes", "answers": answers(*["yes"] * 9, "no")},
        {"question_id": 20, "image_id": 2, "answer_type": "number", "question_type": "how many",
         "multiple_choice_answer": "2", "answers": answers(*["2"] * 8, "3", "3")},
        {"question_id": 21, "image_id": 2, "answer_type": "yes/no", "question_type": "is it",
         "multiple_choice_answer": "yes", "answers": answers(*["yes"] * 6, *["no"] * 4)},
    ]  # fmt: skip
    val_q = [
        {"image_id": 7, "question": "What is it?", "question_id": 70},
        {"image_id": 7, "question": "Is it red?", "question_id": 71},
    ]
    val_a = [
        {"question_id": 70, "image_id": 7, "answer_type": "other",
         "multiple_choice_answer": "giraffe", "answers": answers(*["giraffe"] * 10)},
        {"question_id": 71, "image_id": 7, "answer_type": "yes/no",
         "multiple_choice_answer": "no", "answers": answers(*["no"] * 7, *["yes"] * 3)},
    ]  # fmt: skip
    for sub, questions, annotation_list, images in (
        ("train2014", train_q, train_a, (1, 2)),
        ("val2014", val_q, val_a, (7,)),
    ):
        q_file = root / f"v2_OpenEnded_mscoco_{sub}_questions.json"
        write_json(q_file, {"data_subtype": sub, "task_type": "Open-Ended", "questions": questions})
        write_json(root / f"v2_mscoco_{sub}_annotations.json", {"annotations": annotation_list})
        for image_id in images:
            write_image(root / sub / f"COCO_{sub}_{image_id:012d}.jpg", image_id)


def nlvr2_record(identifier: str, sentence: str, label: str, **extra) -> dict:
    return {
        "identifier": identifier,
        "sentence": sentence,
        "label": label,
        "left_url": "https://example.org/left.jpg",
        "right_url": "https://example.org/right.jpg",
        "writer": "103",
        **extra,
    }


def snli_ve_record(image_id, hypothesis: str, label: str) -> dict:
    return {
        "Flickr30K_ID": image_id,
        "sentence1": "A premise caption.",
        "sentence2": hypothesis,
        "gold_label": label,
        "pairID": "x",
    }


def refcoco(root: Path) -> list[dict]:
    """refs(unc).json + instances.json: image 5 (100x50 px, 3 instances), image 6 (40x40,
    1 instance); returns the refs."""
    instances = {
        "images": [
            {"id": 5, "file_name": "COCO_train2014_000000000005.jpg", "width": 100, "height": 50},
            {"id": 6, "file_name": "COCO_train2014_000000000006.jpg", "width": 40, "height": 40},
        ],
        "annotations": [
            {"id": 501, "image_id": 5, "bbox": [10, 5, 20, 10], "category_id": 1},
            {"id": 601, "image_id": 6, "bbox": [0, 0, 40, 40], "category_id": 2},
            {"id": 502, "image_id": 5, "bbox": [50.0, 0.0, 50.0, 50.0], "category_id": 3},
            {"id": 503, "image_id": 5, "bbox": [90, 40, 20, 20], "category_id": 1},
        ],
        "categories": [{"id": 1, "name": "person"}],
    }
    write_json(root / "instances.json", instances)
    write_image(root / "train2014" / "COCO_train2014_000000000005.jpg", 5, size=(100, 50))
    write_image(root / "train2014" / "COCO_train2014_000000000006.jpg", 6, size=(40, 40))

    def ref(ref_id: int, image_id: int, ann_id: int, split: str, *sents: str) -> dict:
        return {
            "ref_id": ref_id,
            "image_id": image_id,
            "ann_id": ann_id,
            "split": split,
            "category_id": 1,
            "sentences": [{"sent": s, "raw": s, "tokens": s.split()} for s in sents],
        }

    refs = [
        ref(0, 5, 502, "train", "right half", "the big one"),
        ref(1, 6, 601, "testA", "the whole thing"),
        ref(2, 5, 501, "train", "small box on the left"),
        ref(3, 5, 503, "val", "bottom right corner"),
    ]
    write_json(root / "refs(unc).json", refs)
    return refs


def first_batch(dataset, batch_size: int) -> dict:
    """The first batch the dataset's own collator makes."""
    from torch.utils.data import DataLoader

    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=dataset.collator)
    return next(iter(loader))
