"""Grounding: the centre-box baseline and the IoU metrics."""

from __future__ import annotations

import pytest
import torch

from ash_neuro.tasks.grounding import centre_box, grounding_metrics


def test_centre_box_picks_the_candidate_nearest_the_centre():
    boxes = torch.tensor([[0.0, 0.0, 0.2, 0.2], [0.4, 0.5, 0.7, 0.7], [0.8, 0.8, 1.0, 1.0]])
    assert torch.equal(centre_box(boxes), boxes[1])


def test_metrics_are_accuracy_at_iou_half_and_mean_iou_in_percent():
    target = torch.tensor([[0.0, 0.0, 0.5, 0.5]] * 3)
    pred = torch.tensor(
        [
            [0.0, 0.0, 0.5, 0.5],  # IoU 1
            [0.0, 0.0, 0.5, 0.25],  # half the target: IoU 0.5, counted
            [0.25, 0.25, 0.75, 0.75],  # overlap 1/16, union 7/16: IoU 1/7
        ]
    )
    metrics = grounding_metrics(pred, target)
    assert metrics["acc_iou50"] == pytest.approx(200 / 3)
    assert metrics["mean_iou"] == pytest.approx(100 * (1 + 0.5 + 1 / 7) / 3)
