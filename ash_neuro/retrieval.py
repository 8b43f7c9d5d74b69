"""Image-text retrieval: rank by the ITC embeddings, optionally re-rank by ITM, Recall@K.

ALBEF's two-stage retrieval: the ITC cosine similarity ranks every (image, text) pair cheaply;
with `rerank_k > 0` each query's top-k candidates are then re-scored by the ITM head on their
fused states (the rest keep ranking below them), once per direction.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ash_neuro.data.datasets import RetrievalSplit
from ash_neuro.metrics import recall_at_k
from ash_neuro.models.outputs import Encode, VisualInput, VisualOutput


@torch.no_grad()
def embed_texts(
    model: torch.nn.Module,
    texts: Sequence[str],
    tokenizer,
    max_len: int,
    device: torch.device,
    batch_size: int = 256,
) -> Tensor:
    """ITC text embeddings (N, embed_dim)."""
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(
            list(texts[i : i + batch_size]),
            padding=True,
            truncation=True,
            max_length=max_len,
            return_tensors="pt",
        )
        text = model.encode_text(enc["input_ids"].to(device), enc["attention_mask"].to(device))
        out.append(text.text_embed.float().cpu())
    return torch.cat(out)


@torch.no_grad()
def itm_match_scores(
    model: torch.nn.Module,
    visual_tokens: Tensor,
    text_hidden: Tensor,
    text_mask: Tensor,
    image_rows: Tensor,
    text_rows: Tensor,
    batch_size: int = 256,
    visual_mask: Tensor | None = None,
) -> Tensor:
    """ITM log-odds of "matching" for the pairs (image_rows[i], text_rows[i]) -> `(P,)`.

    visual_tokens `(N_img, n', dim)` (and their `visual_mask` `(N_img, n')`, None: all real),
    text_hidden `(N_txt, L, width)` and text_mask on the model's device; the pairs are fused in
    batches, each reading only the images it needs.
    """
    out = []
    for i in range(0, len(image_rows), batch_size):
        images = image_rows[i : i + batch_size]
        texts = text_rows[i : i + batch_size]
        needed, index = torch.unique(images, return_inverse=True)
        mask = None if visual_mask is None else visual_mask[needed]
        fused = model.fuse(text_hidden[texts], text_mask[texts], visual_tokens[needed], index, mask)
        logits = model.itm(fused[:, 0]).float()
        out.append((logits[:, 1] - logits[:, 0]).cpu())
    return torch.cat(out) if out else torch.empty(0)


@torch.no_grad()
def itm_rerank(
    model: torch.nn.Module,
    similarity: Tensor,
    visual_tokens: Tensor,
    texts: Sequence[str],
    tokenizer,
    max_len: int,
    device: torch.device,
    k: int,
    visual_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """(text-to-image, image-to-text) score matrices `(N_img, N_txt)`: each text's top-k images
    and each image's top-k texts by `similarity` get their ITM score and rank first; the other
    candidates follow in `similarity` order. `visual_tokens` `(N_img, n', dim)` on `device`,
    with their `visual_mask` `(N_img, n')` (None: every token real)."""
    enc = tokenizer(
        list(texts), padding=True, truncation=True, max_length=max_len, return_tensors="pt"
    )
    ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
    hidden = torch.cat(
        [
            model.encode_text(ids[i : i + 256], mask[i : i + 256]).hidden
            for i in range(0, len(ids), 256)
        ]
    )
    n_img, n_txt = similarity.shape
    k_img, k_txt = min(k, n_img), min(k, n_txt)
    # (k_img, N_txt) and (N_img, k_txt) indices, flattened row-major with their partners
    top_images = similarity.topk(k_img, dim=0).indices.flatten()
    their_texts = torch.arange(n_txt).repeat(k_img)
    top_texts = similarity.topk(k_txt, dim=1).indices.flatten()
    their_images = torch.arange(n_img).repeat_interleave(k_txt)
    directions = []
    for image_rows, text_rows in ((top_images, their_texts), (their_images, top_texts)):
        scores = itm_match_scores(
            model,
            visual_tokens,
            hidden,
            mask,
            image_rows.to(device),
            text_rows.to(device),
            visual_mask=visual_mask,
        )
        directions.append(promote(similarity, image_rows, text_rows, scores))
    return directions[0], directions[1]


def promote(similarity: Tensor, image_rows: Tensor, text_rows: Tensor, scores: Tensor) -> Tensor:
    """`similarity` with the entries (image_rows, text_rows) replaced by `scores` and ranked
    above every other entry, which keep their order."""
    offset = scores.abs().max() + similarity.abs().max() + 1
    out = similarity - offset
    out[image_rows, text_rows] = scores
    return out


@torch.no_grad()
def encode_images(
    images: Tensor,
    encode: Encode,
    device: torch.device,
    batch_size: int = 128,
    instance_maps: Tensor | None = None,
) -> VisualOutput:
    """Images `(N, 3, H, W)` in [0, 1] (image i has index i), with their panoptic instance maps
    `(N, H, W)` where the data has them, through the encode hook, in batches -> one
    `VisualOutput`."""
    parts = []
    for i in range(0, len(images), batch_size):
        ids = torch.arange(i, min(i + batch_size, len(images)), device=device)
        maps = None if instance_maps is None else instance_maps[i : i + batch_size].to(device)
        parts.append(encode(VisualInput(images[i : i + batch_size].to(device), ids, maps)))
    return VisualOutput.concat(parts)


def evaluate_retrieval(
    model: torch.nn.Module,
    data: RetrievalSplit,
    tokenizer,
    max_len: int,
    device: torch.device,
    rerank_k: int = 0,
    encode: Encode | None = None,
) -> dict[str, float]:
    """Recall@1/5/10 both ways over `data`'s images and captions, ranking by the ITC cosine
    similarity, then (rerank_k > 0) re-ranking each query's top `rerank_k` by ITM. The images
    reach the model through `encode` (default: its own `encode_image`)."""
    was_training = model.training
    model.eval()
    try:
        encode = encode or (lambda inputs: model.encode_image(inputs.image, inputs.instance_map))
        visual = encode_images(data.images, encode, device, instance_maps=data.instance_maps)
        text_embed = embed_texts(model, data.texts, tokenizer, max_len, device)
        similarity = visual.image_embed.float().cpu() @ text_embed.T
        if rerank_k == 0:
            return recall_at_k(similarity, data.txt2img, data.img2txt)
        t2i, i2t = itm_rerank(
            model,
            similarity,
            visual.tokens,
            data.texts,
            tokenizer,
            max_len,
            device,
            rerank_k,
            visual.mask,
        )
        return recall_at_k(t2i, data.txt2img, data.img2txt, similarity_i2t=i2t)
    finally:
        model.train(was_training)
