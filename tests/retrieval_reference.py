"""NumPy reference of image-text retrieval, independent of `ash_neuro.metrics`/`retrieval`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def recall(
    i2t_scores: np.ndarray,
    txt2img: Sequence[int],
    img2txt: Sequence[Sequence[int]],
    t2i_scores: np.ndarray | None = None,
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """Recall@K in percent from `(images, texts)` score matrices: a text hits when fewer than K
    images score strictly above its own image (scores `t2i_scores`, default `i2t_scores`); an
    image hits when fewer than K texts score strictly above its best caption."""
    t2i_scores = i2t_scores if t2i_scores is None else t2i_scores
    out = {}
    for k in ks:
        text_hits = [
            np.sum(t2i_scores[:, t] > t2i_scores[image, t]) < k for t, image in enumerate(txt2img)
        ]
        image_hits = [
            np.sum(i2t_scores[i] > max(i2t_scores[i, j] for j in texts)) < k
            for i, texts in enumerate(img2txt)
        ]
        out[f"t2i_r{k}"] = 100.0 * float(np.mean(text_hits))
        out[f"i2t_r{k}"] = 100.0 * float(np.mean(image_hits))
    out["r_mean"] = float(np.mean(list(out.values())))
    return out


def itc_scores(backbone, data, tokenizer, max_len: int) -> np.ndarray:
    """`(images, texts)` cosine similarities of the ITC embeddings, one image and one caption
    at a time (no batching), in float64."""
    import torch

    with torch.no_grad():
        images = np.stack(
            [backbone.encode_image(data.images[i : i + 1]).image_embed[0].double().numpy()
             for i in range(len(data.images))]
        )  # fmt: skip
        texts = []
        for text in data.texts:
            enc = tokenizer([text], truncation=True, max_length=max_len, return_tensors="pt")
            embed = backbone.encode_text(enc["input_ids"], enc["attention_mask"]).text_embed
            texts.append(embed[0].double().numpy())
    return images @ np.stack(texts).T


def itm_log_odds(backbone, image, text: str, tokenizer, max_len: int) -> float:
    """ITM log-odds of "matching" for one image `(3, H, W)` and one caption, fused alone."""
    import torch

    with torch.no_grad():
        enc = tokenizer([text], truncation=True, max_length=max_len, return_tensors="pt")
        hidden = backbone.encode_text(enc["input_ids"], enc["attention_mask"]).hidden
        tokens = backbone.encode_image(image[None]).tokens
        logits = backbone.itm(backbone.fuse(hidden, enc["attention_mask"], tokens)[:, 0])[0]
    return float(logits[1].double() - logits[0].double())


def reranked_recall(backbone, data, tokenizer, max_len: int, k: int) -> dict[str, float]:
    """Recall@K after ITM re-ranking of each query's top-k ITC candidates: those get their ITM
    log-odds and rank above the others, which keep their ITC order (per direction)."""
    itc = itc_scores(backbone, data, tokenizer, max_len)
    cache: dict[tuple[int, int], float] = {}

    def itm(i: int, t: int) -> float:
        if (i, t) not in cache:
            cache[i, t] = itm_log_odds(backbone, data.images[i], data.texts[t], tokenizer, max_len)
        return cache[i, t]

    floor = -1e6  # below any log-odds
    t2i, i2t = itc + floor, itc + floor
    for t in range(itc.shape[1]):
        for i in np.argsort(-itc[:, t])[:k]:
            t2i[i, t] = itm(i, t)
    for i in range(itc.shape[0]):
        for t in np.argsort(-itc[i])[:k]:
            i2t[i, t] = itm(i, t)
    assert min(cache.values()) > floor / 2
    return recall(i2t, data.txt2img.tolist(), data.img2txt, t2i_scores=t2i)
