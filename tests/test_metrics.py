"""Every downstream metric on hand-made examples whose answers are worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from ash_neuro.metrics import (
    accuracy,
    box_iou,
    chance_recall,
    iou_accuracy,
    recall_at_k,
    vqa_soft_accuracy,
    vqa_soft_scores,
)


def test_accuracy_counts_equal_predictions():
    assert accuracy(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 1, 0])) == 50.0
    with pytest.raises(ValueError):
        accuracy(torch.tensor([0, 1]), torch.tensor([0]))


def test_vqa_soft_scores_are_min_of_agreeing_over_three_and_one():
    ten = ["2"] * 4 + ["3"] * 2 + ["4"] + ["two"] * 3
    scores = vqa_soft_scores(ten)
    assert scores == {"2": 1.0, "3": pytest.approx(2 / 3), "4": pytest.approx(1 / 3), "two": 1.0}


def test_vqa_soft_accuracy_averages_the_score_of_each_prediction():
    # answers: 0 "yes", 1 "no", 2 "red"; question 1: 5 said yes, 1 said no;
    # question 2: 2 said red, 8 said no; question 3: only "no" (exact label)
    scores = torch.tensor([[1.0, 1 / 3, 0.0], [0.0, 1.0, 2 / 3], [0.0, 1.0, 0.0]])
    pred = torch.tensor([1, 2, 1])  # 1/3 + 2/3 + 1 = 2 of 3 questions
    assert vqa_soft_accuracy(pred, scores) == pytest.approx(200 / 3)
    assert vqa_soft_accuracy(torch.tensor([0, 1, 1]), scores) == pytest.approx(100.0)
    with pytest.raises(ValueError):
        vqa_soft_accuracy(pred, scores[0])


def test_box_iou_on_known_boxes():
    a = torch.tensor([[0, 0, 2, 2], [0, 0, 2, 2], [0, 0, 1, 1], [0, 0, 0, 0.0]])
    b = torch.tensor([[1, 1, 3, 3], [0, 0, 2, 2], [2, 2, 3, 3], [0, 0, 0, 0.0]])
    # 1 shared unit of 4 + 4 - 1 = 7; identical; disjoint; two empty boxes
    assert torch.allclose(box_iou(a, b), torch.tensor([1 / 7, 1.0, 0.0, 0.0]))


def test_iou_accuracy_thresholds_at_one_half():
    target = torch.tensor([[0, 0, 4, 4.0]] * 3)
    pred = torch.tensor(
        [
            [0, 0, 4, 2.0],  # IoU 8/16 = 0.5: a hit (>=)
            [0, 0, 4, 1.0],  # IoU 0.25: a miss
            [1, 1, 5, 5.0],  # IoU 9/23: a miss
        ]
    )
    assert iou_accuracy(pred, target) == pytest.approx(100 / 3)
    assert iou_accuracy(pred, target, threshold=0.2) == pytest.approx(100.0)


def test_recall_at_k_both_directions():
    # 3 images, 4 texts: texts 0, 1 show image 0, text 2 image 1, text 3 image 2
    txt2img = torch.tensor([0, 0, 1, 2])
    img2txt = [[0, 1], [2], [3]]
    sim = torch.tensor(
        [
            [0.9, 0.1, 0.2, 0.8],
            [0.5, 0.7, 0.6, 0.1],
            [0.1, 0.3, 0.9, 0.5],
        ]
    )
    m = recall_at_k(sim, txt2img, img2txt, ks=(1, 2))
    # true-image ranks per text: 0, 2 (0.7 and 0.3 beat 0.1), 1, 1 -> R@1 1/4, R@2 3/4
    assert m["t2i_r1"] == 25.0 and m["t2i_r2"] == 75.0
    # best caption rank per image: image 0 -> text 0 first; image 1 -> text 2 second;
    # image 2 -> text 3 second -> R@1 1/3, R@2 3/3
    assert m["i2t_r1"] == pytest.approx(100 / 3) and m["i2t_r2"] == 100.0
    assert m["r_mean"] == pytest.approx((25 + 75 + 100 / 3 + 100) / 4)
    # a separate image-to-text score matrix changes only that direction
    exact = torch.nn.functional.one_hot(txt2img, 3).T.float()
    other = recall_at_k(sim, txt2img, img2txt, ks=(1,), similarity_i2t=exact)
    assert other["t2i_r1"] == 25.0 and other["i2t_r1"] == 100.0


def test_chance_recall_matches_counting():
    # 3 images with 1, 1, 2 captions (4 texts)
    img2txt = [[0], [1], [2, 3]]
    m = chance_recall(img2txt, ks=(1, 2))
    assert m["t2i_r1"] == pytest.approx(100 / 3) and m["t2i_r2"] == pytest.approx(200 / 3)
    # K=1: 1/4, 1/4, 2/4; K=2: 1 - C(3,2)/C(4,2) = 1/2, 1/2, 1 - C(2,2)/C(4,2) = 5/6
    assert m["i2t_r1"] == pytest.approx(100 * (1 / 4 + 1 / 4 + 2 / 4) / 3)
    assert m["i2t_r2"] == pytest.approx(100 * (1 / 2 + 1 / 2 + 5 / 6) / 3)


def test_chance_recall_agrees_with_random_rankings():
    img2txt = [[0, 1, 2], [3], [4, 5], [6]]
    torch.manual_seed(0)
    txt2img = torch.tensor([i for i, texts in enumerate(img2txt) for _ in texts])
    runs = [recall_at_k(torch.rand(4, 7), txt2img, img2txt, ks=(1, 3)) for _ in range(4000)]
    expected = chance_recall(img2txt, ks=(1, 3))
    for key, value in expected.items():
        mean = sum(run[key] for run in runs) / len(runs)
        assert math.isclose(mean, value, abs_tol=2.0), key
