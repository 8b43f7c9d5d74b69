"""ASHNet: the hybrid artificial/spiking vision-language network (ASH-Nets, arXiv 2308.09455),
assembled from the components the config names (`kind:` in each `model` sub-section).

    image ─► visual concrete encoder (ANN) ─► VisualFeatures ─┬─► [graph encoder] ─────┐
                                                              └─► semantic abstract    ├─► adapter
                                                                  encoder (SNN) ───────┘  ─► tokens
    text ids ─► text encoder ─► TextFeatures ─► fusion encoder (cross-attends to tokens) ─► fused

The optional graph encoder (`model.graph.kind`, GSHN's graph attention over instance tokens)
is the continuous branch beside the spiking one: both read the visual encoder's tokens, and
the adapter joins their outputs. Padded tokens (`VisualFeatures.mask` False, e.g. absent
instances) run through the spiking encoder but no mean, attention or loss reads them.

The ITC image embedding is the projection of the mean of the joined tokens, so the spiking
tokens shape it (the [CLS] position alone would not see them: the adapter's norm is per
token). With `model.spiking.kind: none` the same network runs without the spiking encoder (the
ANN-only baseline): `spiking` is None and there is no spiking parameter at all.

Pretrained backbones (`model.text.pretrained`, `model.visual.pretrained`) are read from their
files, or rebuilt from a checkpoint's `backbones` records without them
(`ash_neuro.models.backbones`); a fusion encoder that `takes_text_layers` (ALBEF's split) is
built from the text encoder, whose upper layers it takes.

ViCHA's parts are optional components (each "none" by default, built after every other part so
that switching one on leaves the others' initialisation as it was): visual concepts
(`model.concepts`, tokens appended after the adapter's, so the fusion encoder and the ITC
pooling read them and the spiking encoder does not), the hierarchical alignment heads
(`model.alignment`, read by the `hitc` loss) and the masked-image decoder (`model.mim`, read by
the `mim` loss).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ash_neuro.config import ModelConfig
from ash_neuro.models.backbones import build_text_encoder, build_visual_encoder
from ash_neuro.models.heads import ContrastiveHead, MaskedLMHead, MatchingHead
from ash_neuro.models.outputs import (
    SpikeTrains,
    TextOutput,
    VisualFeatures,
    VisualOutput,
    token_mean,
)
from ash_neuro.models.pretrained_text import copy_mlm_head
from ash_neuro.registry import (
    ADAPTERS,
    ALIGNMENT_HEADS,
    FUSION_ENCODERS,
    GRAPH_ENCODERS,
    IMAGE_DECODERS,
    SPIKING_ENCODERS,
    VISUAL_CONCEPTS,
)

# What a network can produce for the losses (`Loss.needs`): every network the first set, a
# network with a spiking encoder the second too.
OUTPUTS = frozenset({"visual", "text", "image_embed", "text_embed", "fused", "itm", "mlm"})
SPIKING_OUTPUTS = frozenset({"spikes", "spike_rates", "spike_embed"})
# what each optional component adds (the attribute that holds it, the outputs)
COMPONENT_OUTPUTS = {
    "concepts": frozenset({"concept_logits"}),
    "alignment": frozenset({"layer_embeds"}),
    "image_decoder": frozenset({"image_reconstruction"}),
}


class ASHNet(nn.Module):
    """The full pre-training network: encoders, adapter, fusion and heads on one backbone."""

    def __init__(
        self,
        cfg: ModelConfig,
        vocab_size: int,
        pad_token_id: int = 0,
        image_size: int = 64,
        temperature: float = 0.07,
        backbones: Mapping[str, dict] | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        records = dict(backbones or {})
        self.visual_concrete_encoder = build_visual_encoder(
            cfg.visual, image_size, records.get("visual")
        )
        vdim = self.visual_concrete_encoder.dim
        self.semantic_abstract_encoder = SPIKING_ENCODERS.get(cfg.spiking.kind)(cfg.spiking, vdim)
        self.graph_encoder = GRAPH_ENCODERS.get(cfg.graph.kind)(cfg.graph, vdim)
        spike_dim = None if self.semantic_abstract_encoder is None else cfg.spiking.out_dim
        self.adapter = ADAPTERS.get(cfg.adapter.kind)(cfg.adapter, vdim, spike_dim)
        self.text_encoder, text_record, mlm_weights = build_text_encoder(
            cfg.text, vocab_size, pad_token_id, records.get("text")
        )
        width = self.text_encoder.width
        fusion = FUSION_ENCODERS.get(cfg.fusion.kind)
        if getattr(fusion, "takes_text_layers", False):
            self.fusion_encoder = fusion(cfg.fusion, width, vdim, self.text_encoder)
        else:
            self.fusion_encoder = fusion(cfg.fusion, width, vdim)
        self.itc = ContrastiveHead(vdim, width, cfg.embed_dim, temperature)
        self.itm = MatchingHead(width)
        self.mlm = MaskedLMHead(width, vocab_size)
        if text_record is not None:  # a pretrained text backbone: its LayerNorm's epsilon
            self.mlm.transform[2].eps = self.text_encoder.model.config.layer_norm_eps
        if mlm_weights is not None:  # and its own MLM head, where its weights have one
            copy_mlm_head(self.mlm, mlm_weights)
        # what rebuilds the pretrained parts without their files (a checkpoint's `backbones`)
        visual_record = getattr(self.visual_concrete_encoder, "record", None)
        self.backbone_records: dict[str, dict] = {
            part: record
            for part, record in (("text", text_record), ("visual", visual_record))
            if record is not None
        }
        # STUA's projection of the pooled spike rates into the text embedding space
        self.spike_embed_proj = None if spike_dim is None else nn.Linear(spike_dim, cfg.embed_dim)
        # ViCHA's optional parts, last: the parts above initialise as they do without them
        self.concepts = VISUAL_CONCEPTS.get(cfg.concepts.kind)(
            cfg.concepts, vdim, width, pad_token_id
        )
        self.alignment = ALIGNMENT_HEADS.get(cfg.alignment.kind)(
            cfg.alignment, vdim, width, cfg.embed_dim
        )
        self.image_decoder = IMAGE_DECODERS.get(cfg.mim.kind)(cfg.mim, cfg.visual, image_size)

    @property
    def hybrid(self) -> bool:
        """Whether the network has a spiking encoder."""
        return self.semantic_abstract_encoder is not None

    @property
    def outputs(self) -> frozenset[str]:
        """The named outputs this network produces (what a loss may declare it `needs`); a
        fusion encoder may add its own (`outputs`: the unified encoder's "spheres", "amc")."""
        names = OUTPUTS | SPIKING_OUTPUTS if self.hybrid else OUTPUTS
        for part, outputs in COMPONENT_OUTPUTS.items():
            if getattr(self, part) is not None:
                names |= outputs
        return names | getattr(self.fusion_encoder, "outputs", frozenset())

    def encode_image(self, image: Tensor, instance_map: Tensor | None = None) -> VisualOutput:
        """`(B, 3, H, W)` float in [0, 1] (and, for encoders that read it, the panoptic
        instance map `(B, H, W)`) -> `VisualOutput`."""
        features = self.visual_concrete_encoder(image, instance_map)
        spiking = None
        if self.semantic_abstract_encoder is not None:
            spiking = self.semantic_abstract_encoder(features.tokens, features.mask)
        return self.join_visual(features, spiking)

    def join_visual(self, features: VisualFeatures, spiking: SpikeTrains | None) -> VisualOutput:
        """The graph encoder, adapter and embeddings after the spiking encoder, so that spikes
        computed outside PyTorch (the exported encoder on Lava) re-enter the network where
        Norse's would."""
        spike_embed = None
        if spiking is not None:
            pooled = token_mean(spiking.spikes, features.mask, dim=2).mean(dim=0)
            spike_embed = F.normalize(self.spike_embed_proj(pooled), dim=-1)
        joined = features if self.graph_encoder is None else self.graph_encoder(features)
        tokens, grids = self.adapter(joined, spiking)
        mask = None
        if features.mask is not None:
            # an adapter's tokens are whole blocks of the feature rows (concat: ANN, then spikes)
            blocks, rest = divmod(tokens.shape[1], features.mask.shape[1])
            if rest:
                raise ValueError(
                    f"{tokens.shape[1]} joined tokens are not blocks of "
                    f"{features.mask.shape[1]} masked feature rows"
                )
            mask = features.mask.repeat(1, blocks)
        concept_logits = None
        if self.concepts is not None:  # appended after the blocks the grids locate
            concepts, concept_logits = self.concepts(features, self.text_encoder.word_embeddings)
            tokens = torch.cat([tokens, concepts], dim=1)
            if mask is not None:
                mask = torch.cat([mask, mask.new_ones(concepts.shape[:2])], dim=1)
        return VisualOutput(
            tokens=tokens,
            grids=grids,
            features=features,
            spiking=spiking,
            image_embed=self.itc.embed_image(token_mean(tokens, mask)),
            spike_embed=spike_embed,
            mask=mask,
            concept_logits=concept_logits,
        )

    def encode_text(self, ids: Tensor, mask: Tensor) -> TextOutput:
        """ids, mask `(B, L)` int64 -> `TextOutput`."""
        features = self.text_encoder(ids, mask)
        return TextOutput(features, self.itc.embed_text(features.hidden[:, 0]))

    def fuse(
        self,
        text_hidden: Tensor,
        text_mask: Tensor,
        visual_tokens: Tensor,
        visual_index: Tensor | None = None,
        visual_mask: Tensor | None = None,
    ) -> Tensor:
        """`(B, L, width)`, `(B, L)`, `(B_img, n', dim)` -> fused `(B, L, width)`; text b reads
        image `visual_index[b]` (default: image b, B_img = B); `visual_mask` `(B_img, n')`
        (`VisualOutput.mask`) keeps padded visual tokens out of the cross-attention."""
        return self.fusion_encoder(text_hidden, text_mask, visual_tokens, visual_index, visual_mask)
