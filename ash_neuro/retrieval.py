"""Image-text retrieval: embeddings from the ITC heads and Recall@K in both directions."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def recall_at_k(
    similarity: Tensor,
    txt2img: Tensor,
    img2txt: Sequence[Sequence[int]],
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """Recall@K in percent from an (images, texts) similarity matrix.

    Text-to-image: a text is a hit when its image ranks in the top K. Image-to-text: an image
    is a hit when any of its captions ranks in the top K (the standard Karpathy-split rule).
    """
    n_img, n_txt = similarity.shape
    if txt2img.shape != (n_txt,) or len(img2txt) != n_img:
        raise ValueError("txt2img/img2txt do not match the similarity matrix")
    # rank of the true image for each text = number of images scoring strictly higher
    true_scores = similarity[txt2img, torch.arange(n_txt)]
    t2i_rank = (similarity > true_scores.unsqueeze(0)).sum(dim=0)
    i2t_rank = torch.empty(n_img, dtype=torch.long)
    for i, texts in enumerate(img2txt):
        best = similarity[i, list(texts)].max()
        i2t_rank[i] = (similarity[i] > best).sum()
    metrics = {}
    for k in ks:
        metrics[f"t2i_r{k}"] = 100.0 * (t2i_rank < k).float().mean().item()
        metrics[f"i2t_r{k}"] = 100.0 * (i2t_rank < k).float().mean().item()
    metrics["r_mean"] = sum(metrics.values()) / len(metrics)
    return metrics


@torch.no_grad()
def embed_images(
    model: torch.nn.Module, images: Tensor, device: torch.device, batch_size: int = 128
) -> Tensor:
    """ITC image embeddings (N, embed_dim) for a float image tensor (N, 3, H, W) in [0, 1]."""
    out = [
        model.encode_image(images[i : i + batch_size].to(device)).image_embed.float().cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out)


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


def evaluate_retrieval(
    model: torch.nn.Module,
    images: Tensor,
    texts: Sequence[str],
    txt2img: Tensor,
    img2txt: Sequence[Sequence[int]],
    tokenizer,
    max_len: int,
    device: torch.device,
) -> dict[str, float]:
    """Recall@1/5/10 both ways, ranking by the ITC cosine similarity."""
    was_training = model.training
    model.eval()
    try:
        image_embed = embed_images(model, images, device)
        text_embed = embed_texts(model, texts, tokenizer, max_len, device)
    finally:
        model.train(was_training)
    return recall_at_k(image_embed @ text_embed.T, txt2img, img2txt)
