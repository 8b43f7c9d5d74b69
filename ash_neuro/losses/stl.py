"""STL: Spiked Text Learning (GSHN, arXiv 2501.19069), the successor of STUA.

Text features guide the discrete (spiking) semantics. The paper's summary leaves the target and
the pooling open; our choice, written here as `shared/PAPERS.md` asks:

- Granularity: words and instances, not sentence and image. STUA (`stua.py`) already aligns
  one pooled spike embedding per image with one sentence embedding; GSHN's spiking encoder
  sees one token per instance, so STL aligns those with the caption's words.
- Spike side: each real instance's output spike rates (mean over the T steps), through STUA's
  spike projection (`ASHNet.spike_embed_proj`), unit norm: e_ik `(B, K, E)`; padded instances
  are masked out.
- Target: every word token of the caption ([CLS], [SEP] and padding excluded) from the text
  encoder, through ITC's text projection (`ASHNet.itc.text_proj`), unit norm, detached: t_jw
  `(B, L, E)`. Text guides: no gradient reaches the text encoder or its projection (as in
  STUA), so only the spiking side, and the visual encoder beneath it, learns from STL.
- Pooling: s_ij = mean over the words w of caption j of max over the instances k of image i
  of e_ik . t_jw. Each word is matched to the instance whose spike code expresses it best
  (token-wise late interaction, FILIP, Yao et al., ICLR 2022), from words to instances and not
  back: the wall, the floor and objects a caption does not mention must not be pulled towards
  its words, but every word should be carried by some instance's spikes.
- Loss: one-directional InfoNCE from images to captions over s / temperature, every caption of
  the image a positive (STUA's form): L = -1/B sum_i sum_j p_ij log softmax_j(s_ij / tau),
  p_ij uniform over image i's captions in the batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from ash_neuro.losses.base import Loss
from ash_neuro.losses.targets import positive_mask, soft_cross_entropy
from ash_neuro.registry import LOSSES

if TYPE_CHECKING:
    from ash_neuro.objective import ForwardPass


def word_mask(text_mask: Tensor) -> Tensor:
    """BERT-style `text_mask` `(B, L)` ([CLS] ... [SEP] then padding) -> `(B, L)` bool, True on
    the words: every real token but the first ([CLS]) and the last ([SEP])."""
    positions = torch.arange(text_mask.shape[1], device=text_mask.device)
    length = text_mask.sum(dim=1, keepdim=True)
    return (positions >= 1) & (positions < length - 1)


def stl_similarity(
    instances: Tensor, instance_mask: Tensor, words: Tensor, words_mask: Tensor
) -> Tensor:
    """Unit instance embeddings `(B_img, K, E)` with their mask `(B_img, K)` and unit word
    embeddings `(B_txt, L, E)` with theirs `(B_txt, L)` -> `(B_img, B_txt)`: per pair, the mean
    over the caption's words of the best cosine similarity among the image's instances."""
    cosine = torch.einsum("ike,jwe->ijkw", instances, words)
    hidden = ~instance_mask[:, None, :, None]
    best = cosine.masked_fill(hidden, float("-inf")).amax(dim=2)  # (B_img, B_txt, L)
    weights = words_mask.to(best.dtype)[None]
    return (best * weights).sum(dim=-1) / weights.sum(dim=-1).clamp(min=1)


def stl_loss(
    instances: Tensor,
    instance_mask: Tensor,
    words: Tensor,
    words_mask: Tensor,
    temperature: float,
    image_ids: Tensor | None = None,
) -> Tensor:
    """Images to captions InfoNCE over `stl_similarity` / temperature (pair i matches, or every
    pair of the same `image_ids`); no gradient reaches `words`."""
    logits = stl_similarity(instances, instance_mask, words.detach(), words_mask) / temperature
    return soft_cross_entropy(logits, positive_mask(len(logits), image_ids, logits.device))


@LOSSES.register("stl")
class SpikedTextLearning(Loss):
    # spike_embed: the network has STUA's spike projection, which STL applies per instance
    needs = frozenset({"spikes", "spike_embed", "text"})

    def __call__(self, forward: ForwardPass) -> Tensor:
        model, visual = forward.model, forward.visual
        rates = visual.spikes.mean(dim=0)  # (B, K, out_dim)
        instances = F.normalize(model.spike_embed_proj(rates), dim=-1)
        mask = visual.features.mask
        if mask is None:
            mask = torch.ones(rates.shape[:2], dtype=torch.bool, device=rates.device)
        words = F.normalize(model.itc.text_proj(forward.text.hidden), dim=-1)
        return stl_loss(
            instances,
            mask,
            words,
            word_mask(forward.batch["text_mask"]),
            self.cfg.temperature,
            forward.image_ids,
        )
