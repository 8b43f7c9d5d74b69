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


@dataclass
class VisualFeatures:
    """A visual encoder's output for B images.

    tokens         `(B, n, dim)` continuous tokens ([CLS] first for "vit")
    hidden_states  per block `(B, n, dim)`, the embedded input first (ViCHA aligns several)
    grid           where the patch tokens lie, or None if the tokens are not a grid
    mask           `(B, n)` bool, True on real tokens; None when every token is real
    """

    tokens: Tensor
    hidden_states: tuple[Tensor, ...] = ()
    grid: TokenGrid | None = None
    mask: Tensor | None = None


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
    grids        the blocks of `tokens` that tile the image (per token set; grounding pools them)
    features     the visual concrete encoder's `VisualFeatures`
    spiking      the semantic abstract encoder's `SpikeTrains`, or None without one
    image_embed  `(B, embed_dim)` ITC embedding, unit norm
    spike_embed  `(B, embed_dim)` STUA embedding of the pooled spike rates, unit norm, or None
    """

    tokens: Tensor
    grids: tuple[TokenGrid, ...]
    features: VisualFeatures
    spiking: SpikeTrains | None
    image_embed: Tensor
    spike_embed: Tensor | None = None

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
            features=VisualFeatures(
                self.features.tokens[rows],
                grid=self.features.grid,
                mask=None if self.features.mask is None else self.features.mask[rows],
            ),
            spiking=spiking,
            image_embed=self.image_embed[rows],
            spike_embed=None if self.spike_embed is None else self.spike_embed[rows],
        )

    @staticmethod
    def concat(parts: list[VisualOutput]) -> VisualOutput:
        """Batches of images as one (spike rates and hidden states dropped)."""
        first = parts[0]
        masks = [p.features.mask for p in parts]
        return VisualOutput(
            tokens=torch.cat([p.tokens for p in parts]),
            grids=first.grids,
            features=VisualFeatures(
                torch.cat([p.features.tokens for p in parts]),
                grid=first.features.grid,
                mask=None if masks[0] is None else torch.cat(masks),
            ),
            spiking=None
            if first.spiking is None
            else SpikeTrains(torch.cat([p.spiking.spikes for p in parts], dim=1)),
            image_embed=torch.cat([p.image_embed for p in parts]),
            spike_embed=None
            if first.spike_embed is None
            else torch.cat([p.spike_embed for p in parts]),
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
