"""Hierarchical cross-modal alignment heads (ViCHA's H-ITC, arXiv 2208.13628): ITC not only
between the encoders' last representations but between intermediate layers of both.

Registered as the alignment head "hierarchical" (and "none", no head). For each configured pair
i, the visual encoder's hidden state `visual_layers[i]` and the text encoder's `text_layers[i]`
(indices into `VisualFeatures.hidden_states` and `TextFeatures.hidden_states`, the embedded
input at 0) are read at position 0 ([CLS] of both, as ViCHA does), projected to the ITC
embedding width by their own heads and unit-normalised; the `hitc` loss
(`ash_neuro/losses/hitc.py`) aligns each pair contrastively.

ViCHA's defaults (its configs/Pretrain.yaml: `num_hidden_align: 5`, `ita_hidden_weights:
[1, 1, 1, 1, 1]`, `ita_hidden_weight: 0.1`) pair the ViT-B's blocks 7-11 with the text
encoder's layers 1-5 (of 6), the last pair being ITC itself: every text layer but the
embeddings is aligned with the visual block at the same distance from the top. With our
two-layer encoders that rule leaves one intermediate pair, visual block 1 with text layer 1
(`visual_layers: [-2]`, `text_layers: [-2]`, weight 1, the loss weighted 0.1 beside ITC).

The visual hidden states of our pre-norm ViT are the unnormalised residual stream, while ViCHA
reads each through the ViT's final LayerNorm; each visual head therefore starts with a
LayerNorm of its own. BERT's hidden states are already normalised (post-norm layers).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ash_neuro.config import AlignmentConfig
from ash_neuro.errors import ConfigError
from ash_neuro.models.outputs import TextFeatures, VisualFeatures
from ash_neuro.registry import ALIGNMENT_HEADS


def layer_summary(hidden_states: tuple[Tensor, ...], layer: int, key: str) -> Tensor:
    """Position 0 of hidden state `layer` `(B, width)`; a layer the encoder lacks, or the
    embedded input (whose position 0 is the same [CLS] embedding for every input, so aligning
    it teaches nothing; ViCHA leaves it out), is a one-line ConfigError naming the config key."""
    count = len(hidden_states)
    if not -count < layer < count or layer % count == 0:
        raise ConfigError(
            f"{key}: layer {layer} is not a block of this encoder, whose {count} hidden states "
            f"are the embedded input (0, not alignable) and {count - 1} block(s) (1 to "
            f"{count - 1}; -1: the last)"
        )
    return hidden_states[layer][:, 0]


@ALIGNMENT_HEADS.register("hierarchical")
class HierarchicalAlignment(nn.Module):
    """(`VisualFeatures`, `TextFeatures`) -> one (image `(B, E)`, text `(B, E)`) pair of unit
    embeddings per aligned layer pair."""

    def __init__(
        self, cfg: AlignmentConfig, visual_dim: int, text_width: int, embed_dim: int
    ) -> None:
        super().__init__()
        self.pairs = list(zip(cfg.visual_layers, cfg.text_layers, strict=True))
        self.visual_proj = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(visual_dim), nn.Linear(visual_dim, embed_dim))
            for _ in self.pairs
        )
        self.text_proj = nn.ModuleList(nn.Linear(text_width, embed_dim) for _ in self.pairs)

    def forward(self, visual: VisualFeatures, text: TextFeatures) -> list[tuple[Tensor, Tensor]]:
        out = []
        for (v, t), v_proj, t_proj in zip(self.pairs, self.visual_proj, self.text_proj):
            image = layer_summary(visual.hidden_states, v, "model.alignment.visual_layers")
            words = layer_summary(text.hidden_states, t, "model.alignment.text_layers")
            out.append((F.normalize(v_proj(image), dim=-1), F.normalize(t_proj(words), dim=-1)))
        return out


@ALIGNMENT_HEADS.register("none")
def no_alignment(cfg: AlignmentConfig, visual_dim: int, text_width: int, embed_dim: int) -> None:
    """No intermediate alignment: ITC aligns the last representations only."""
    return None
