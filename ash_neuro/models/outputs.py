"""What the encoders return: small named records, so that a later component reads the field it
needs (a token grid, per-layer hidden states, spikes per layer) without changing any encoder's
signature."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass(frozen=True)
class TokenGrid:
    """A block of tokens that tiles the image row-major: tokens[start : start + rows * cols]."""

    start: int
    rows: int
    cols: int

    @property
    def stop(self) -> int:
        return self.start + self.rows * self.cols


@dataclass(frozen=True)
class TokenSegments:
    """A block of tokens, one per image segment: token `start + j` stands for the pixels where
    `VisualFeatures.segments == j` (panoptic instances; grounding pools them per box)."""

    start: int
    count: int

    @property
    def stop(self) -> int:
        return self.start + self.count


def token_mean(x: Tensor, mask: Tensor | None, dim: int = 1) -> Tensor:
    """Mean of `x` over its token axis `dim`, real tokens only: `mask` is `(B, n)` bool over
    `x`'s batch and token axes (None: every token is real)."""
    if mask is None:
        return x.mean(dim=dim)
    shape = [1] * x.dim()
    shape[dim - 1], shape[dim] = mask.shape
    weights = mask.to(x.dtype).view(shape)
    return (x * weights).sum(dim=dim) / weights.sum(dim=dim).clamp(min=1)


# Where a block of the joined tokens lies in the image: a patch grid or a set of segments.
TokenLayout = TokenGrid | TokenSegments


@dataclass
class VisualFeatures:
    """A visual encoder's output for B images.

    tokens         `(B, n, dim)` continuous tokens ([CLS] first for "vit")
    hidden_states  per block `(B, n, dim)`, the embedded input first (ViCHA aligns several)
    grid           where the patch tokens lie, or None if the tokens are not a grid
    mask           `(B, n)` bool, True on real tokens; None when every token is real (padded
                   instance tokens are False: they still run through the spiking encoder, the
                   contract's rows are batch * n, but no pooling, attention or loss reads them)
    segments       `(B, H, W)` int64, the token each pixel belongs to (-1: none), for tokens
                   that stand for image segments ("panoptic_instances"); None otherwise
    """

    tokens: Tensor
    hidden_states: tuple[Tensor, ...] = ()
    grid: TokenGrid | None = None
    mask: Tensor | None = None
    segments: Tensor | None = None

    @property
    def layouts(self) -> tuple[TokenLayout, ...]:
        """Where the tokens lie in the image: the segments, the patch grid, or neither."""
        if self.segments is not None:
            return (TokenSegments(0, self.tokens.shape[1]),)
        return () if self.grid is None else (self.grid,)

    def select(self, rows: Tensor | slice) -> VisualFeatures:
        """The images `rows` (hidden states dropped: they are per batch)."""
        return VisualFeatures(
            self.tokens[rows],
            grid=self.grid,
            mask=None if self.mask is None else self.mask[rows],
            segments=None if self.segments is None else self.segments[rows],
        )

    @staticmethod
    def concat(parts: list[VisualFeatures]) -> VisualFeatures:
        """Batches of images as one (hidden states dropped)."""
        first = parts[0]
        return VisualFeatures(
            torch.cat([p.tokens for p in parts]),
            grid=first.grid,
            mask=None if first.mask is None else torch.cat([p.mask for p in parts]),
            segments=None if first.segments is None else torch.cat([p.segments for p in parts]),
        )


@dataclass
class SpikeTrains:
    """A spiking encoder's output for B images of n token rows each.

    spikes  `(T, B, n, out_dim)` in {0, 1}, the discrete latents
    layers  {`lif1`: `(T, B * n, width)`, ...} every spiking layer's spikes, in order
    rates   {`lif1`: 0-d mean rate, ...} differentiable (the rate regulariser); detach to log
    """

    spikes: Tensor
    layers: dict[str, Tensor] = field(default_factory=dict)
    rates: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class TextFeatures:
    """A text encoder's output: `hidden` `(B, L, width)` (position 0 summarises the text),
    `mask` `(B, L)` (1 on tokens), `hidden_states` per layer, the embeddings first."""

    hidden: Tensor
    mask: Tensor
    hidden_states: tuple[Tensor, ...] = ()


@dataclass
class VisualOutput:
    """What `ASHNet.encode_image` returns for B images: the encoders' records and what the
    adapter and the ITC/STUA projections made of them.

    tokens       `(B, n', dim)` the joined visual tokens the fusion encoder reads
    grids        the blocks of `tokens` that cover the image, patch grids or segments (per
                 token set; grounding pools them per box)
    features     the visual concrete encoder's `VisualFeatures`
    spiking      the semantic abstract encoder's `SpikeTrains`, or None without one
    image_embed  `(B, embed_dim)` ITC embedding, unit norm
    spike_embed  `(B, embed_dim)` STUA embedding of the pooled spike rates, unit norm, or None
    mask         `(B, n')` bool, True on real joined tokens; None when every token is real
    concept_logits  `(B, V)` the visual-concept tagger's score of each concept word, or None
                 without visual concepts (their tokens are the last ones of `tokens`)
    """

    tokens: Tensor
    grids: tuple[TokenLayout, ...]
    features: VisualFeatures
    spiking: SpikeTrains | None
    image_embed: Tensor
    spike_embed: Tensor | None = None
    mask: Tensor | None = None
    concept_logits: Tensor | None = None

    @property
    def spikes(self) -> Tensor | None:
        """`(T, B, n, out_dim)` or None."""
        return None if self.spiking is None else self.spiking.spikes

    @property
    def spike_rates(self) -> dict[str, Tensor]:
        return {} if self.spiking is None else self.spiking.rates

    def select(self, rows: Tensor) -> VisualOutput:
        """The images `rows` (spike rates and hidden states dropped: they are per batch)."""
        spiking = None
        if self.spiking is not None:
            spiking = SpikeTrains(self.spiking.spikes[:, rows])
        return VisualOutput(
            tokens=self.tokens[rows],
            grids=self.grids,
            features=self.features.select(rows),
            spiking=spiking,
            image_embed=self.image_embed[rows],
            spike_embed=None if self.spike_embed is None else self.spike_embed[rows],
            mask=None if self.mask is None else self.mask[rows],
            concept_logits=None if self.concept_logits is None else self.concept_logits[rows],
        )

    @staticmethod
    def concat(parts: list[VisualOutput]) -> VisualOutput:
        """Batches of images as one (spike rates and hidden states dropped)."""
        first = parts[0]
        return VisualOutput(
            tokens=torch.cat([p.tokens for p in parts]),
            grids=first.grids,
            features=VisualFeatures.concat([p.features for p in parts]),
            spiking=None
            if first.spiking is None
            else SpikeTrains(torch.cat([p.spiking.spikes for p in parts], dim=1)),
            image_embed=torch.cat([p.image_embed for p in parts]),
            spike_embed=None
            if first.spike_embed is None
            else torch.cat([p.spike_embed for p in parts]),
            mask=None if first.mask is None else torch.cat([p.mask for p in parts]),
            concept_logits=None
            if first.concept_logits is None
            else torch.cat([p.concept_logits for p in parts]),
        )


@dataclass
class TextOutput:
    """What `ASHNet.encode_text` returns: the text encoder's `TextFeatures` and the ITC text
    embedding `(B, embed_dim)`, unit norm."""

    features: TextFeatures
    text_embed: Tensor

    @property
    def hidden(self) -> Tensor:
        """`(B, L, width)`."""
        return self.features.hidden


@dataclass
class VisualInput:
    """A batch of images as the visual encoders take it.

    image         `(B, 3, H, W)` float in [0, 1]
    ids           `(B,)` int64, each image's index in its split (how a deployment finds the
                  spikes it computed for that image)
    instance_map  `(B, H, W)` int64 panoptic instance ids, where the data has them (encoders
                  that pool per instance read it; `ash_neuro.data.datasets`' contract)
    """

    image: Tensor
    ids: Tensor
    instance_map: Tensor | None = None


# The encode hook: a `VisualInput` -> its `VisualOutput` (the backbone's own encoders, or
# spikes computed elsewhere re-joined to the ANN tokens).
Encode = Callable[[VisualInput], VisualOutput]
