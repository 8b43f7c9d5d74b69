"""The downstream tasks' standard metrics, as pure functions of predictions and targets.

Every score is a percentage. Boxes are `x0, y0, x1, y1` (any consistent unit, x1 >= x0).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import torch
from torch import Tensor

IOU_THRESHOLD = 0.5  # RefCOCO's hit criterion


def accuracy(pred: Tensor, target: Tensor) -> float:
    """Percentage of `pred` `(N,)` equal to `target` `(N,)`."""
    if pred.shape != target.shape or pred.ndim != 1:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must be (N,)")
    return 100.0 * (pred == target).float().mean().item()


def vqa_soft_scores(annotator_answers: Sequence[str]) -> dict[str, float]:
    """VQA's soft score of each given answer: min(#annotators who gave it / 3, 1)."""
    return {answer: min(count / 3, 1.0) for answer, count in Counter(annotator_answers).items()}


def vqa_soft_accuracy(pred: Tensor, answer_scores: Tensor) -> float:
    """VQA accuracy in percent: the soft score `(N, A)` of each predicted answer `(N,)`,
    averaged (an answer given by 3 or more annotators scores 1, by fewer #/3)."""
    if answer_scores.ndim != 2 or pred.shape != answer_scores.shape[:1]:
        raise ValueError(
            f"pred {tuple(pred.shape)} and answer_scores {tuple(answer_scores.shape)} "
            "must be (N,) and (N, A)"
        )
    return 100.0 * answer_scores.gather(1, pred.long()[:, None]).float().mean().item()


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """Intersection over union of aligned boxes `(N, 4)`, `(N, 4)` -> `(N,)` (0 for two empty
    boxes)."""
    lo = torch.maximum(a[:, :2], b[:, :2])
    hi = torch.minimum(a[:, 2:], b[:, 2:])
    inter = (hi - lo).clamp(min=0).prod(dim=1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(dim=1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(dim=1)
    union = area_a + area_b - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(union))


def iou_accuracy(pred: Tensor, target: Tensor, threshold: float = IOU_THRESHOLD) -> float:
    """Percentage of predicted boxes `(N, 4)` whose IoU with the target `(N, 4)` reaches
    `threshold`."""
    return 100.0 * (box_iou(pred, target) >= threshold).float().mean().item()


def recall_at_k(
    similarity: Tensor,
    txt2img: Tensor,
    img2txt: Sequence[Sequence[int]],
    ks: Sequence[int] = (1, 5, 10),
    similarity_i2t: Tensor | None = None,
) -> dict[str, float]:
    """Recall@K in percent from an (images, texts) score matrix, both directions.

    Text-to-image: a text is a hit when its image ranks in the top K. Image-to-text: an image
    is a hit when any of its captions ranks in the top K (the standard Karpathy-split rule).
    `similarity_i2t` scores the image-to-text direction when it differs (ITM re-ranking
    re-scores each direction's own top-k); by default both use `similarity`.
    """
    n_img, n_txt = similarity.shape
    if txt2img.shape != (n_txt,) or len(img2txt) != n_img:
        raise ValueError("txt2img/img2txt do not match the similarity matrix")
    i2t_scores = similarity if similarity_i2t is None else similarity_i2t
    # rank of the true image for each text = number of images scoring strictly higher
    true_scores = similarity[txt2img, torch.arange(n_txt)]
    t2i_rank = (similarity > true_scores.unsqueeze(0)).sum(dim=0)
    i2t_rank = torch.empty(n_img, dtype=torch.long)
    for i, texts in enumerate(img2txt):
        best = i2t_scores[i, list(texts)].max()
        i2t_rank[i] = (i2t_scores[i] > best).sum()
    metrics = {}
    for k in ks:
        metrics[f"t2i_r{k}"] = 100.0 * (t2i_rank < k).float().mean().item()
        metrics[f"i2t_r{k}"] = 100.0 * (i2t_rank < k).float().mean().item()
    metrics["r_mean"] = sum(metrics.values()) / len(metrics)
    return metrics


def chance_recall(
    img2txt: Sequence[Sequence[int]], ks: Sequence[int] = (1, 5, 10)
) -> dict[str, float]:
    """Expected Recall@K (percent) of a uniformly random ranking, with `recall_at_k`'s keys.

    Text-to-image: K of the images are drawn, so K / #images. Image-to-text: an image with c
    of the T captions misses when the K drawn captions avoid all c: C(T - c, K) / C(T, K).
    """
    n_img = len(img2txt)
    n_txt = sum(len(texts) for texts in img2txt)
    metrics = {}
    for k in ks:
        metrics[f"t2i_r{k}"] = 100.0 * min(k, n_img) / n_img
        hits = [
            1.0 - math.prod((n_txt - len(texts) - j) / (n_txt - j) for j in range(min(k, n_txt)))
            for texts in img2txt
        ]
        metrics[f"i2t_r{k}"] = 100.0 * sum(hits) / n_img
    metrics["r_mean"] = sum(metrics.values()) / len(metrics)
    return metrics
