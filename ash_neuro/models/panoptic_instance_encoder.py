"""Panoptic instance tokens (GSHN, arXiv 2501.19069): one visual token per image segment.

Registered as the visual encoder "panoptic_instances". The image goes through the ViT-style
patch encoder of "vit" (`VisualConcreteEncoder`: patches, positional embeddings, transformer
blocks); its patch tokens are then pooled per panoptic segment, things and stuff alike, into one
node per instance, padded to a fixed K (`model.visual.max_instances`) with a mask:

    node_k = sum_p a_pk x_p / sum_p a_pk,   a_pk = pixels of segment k inside patch p

(an area-weighted mean, so a segment smaller than a patch still pools the patch it lies in), then
a LayerNorm (the spiking encoder reads the nodes as input currents, so their scale must be
fixed); a segment with no pixel (absent, or padding up to K) is a zero token with mask False.
Node k is segment id k of the instance map, so on the procedural world node 0 is the wall, 1
the floor and 2 + j object j; pixels with a negative id belong to no node.

Where the segments come from (`model.visual.segments`):

    panoptic  the data's panoptic instance maps (`VisualInput.instance_map`; the procedural
              world ships exact ones); an image batch without maps falls back to k-means
    kmeans    always k-means, ignoring any map (what the fallback costs, measured on the world)

The fallback, for images without panoptic annotations (the real-data readers, random export
samples): k-means over the patch tokens, run offline inside the encoder with no extra
dependency. Each patch is described by its unit-normalised token and its grid position scaled by
`kmeans_spatial` (a SLIC-like trade of appearance against compactness, on the patch grid rather
than on pixels); K centres start on an even spread of grid positions and take
`kmeans_iters` Lloyd steps, without gradient, deterministically (the export and a deployment
find the same segments). Segments are unions of whole patches, so they cannot follow an
object's outline as a panoptic map does; the README gives the measured cost.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ash_neuro.config import VisualConfig
from ash_neuro.models.outputs import VisualFeatures
from ash_neuro.models.visual_concrete_encoder import VisualConcreteEncoder
from ash_neuro.registry import VISUAL_ENCODERS


def segment_areas(instance_map: Tensor, patch_size: int, max_instances: int) -> Tensor:
    """Instance map `(B, H, W)` int (ids in [0, K), negative: no segment) -> `(B, P, K)` float,
    the pixels of each segment inside each patch (patches row-major)."""
    batch, height, width = instance_map.shape
    if int(instance_map.max()) >= max_instances:
        raise ValueError(
            f"instance id {int(instance_map.max())} in the panoptic map; "
            f"model.visual.max_instances={max_instances} allows ids below {max_instances}"
        )
    valid = (instance_map >= 0).unsqueeze(-1)
    onehot = F.one_hot(instance_map.clamp(min=0), max_instances) * valid  # (B, H, W, K)
    rows, cols = height // patch_size, width // patch_size
    onehot = onehot.view(batch, rows, patch_size, cols, patch_size, max_instances)
    return onehot.sum(dim=(2, 4)).reshape(batch, rows * cols, max_instances).float()


def pool_instances(patch_tokens: Tensor, areas: Tensor) -> tuple[Tensor, Tensor]:
    """Patch tokens `(B, P, dim)` and `segment_areas` `(B, P, K)` -> (nodes `(B, K, dim)`, the
    area-weighted mean of the patches each segment covers, zeros for an empty segment; mask
    `(B, K)` bool, True where the segment has pixels)."""
    total = areas.sum(dim=1)  # (B, K)
    nodes = areas.transpose(1, 2) @ patch_tokens / total.clamp(min=1).unsqueeze(-1)
    return nodes, total > 0


def kmeans_segments(
    patch_tokens: Tensor, side: int, clusters: int, iters: int, spatial: float
) -> Tensor:
    """The offline fallback: patch tokens `(B, side*side, dim)` -> `(B, side*side)` int64, the
    cluster (segment id in [0, clusters)) of each patch, by k-means over [unit-normalised token,
    spatial * (row, col) / side], centres starting at evenly spread grid positions."""
    batch, patches, _ = patch_tokens.shape
    grid = torch.arange(side, device=patch_tokens.device, dtype=patch_tokens.dtype)
    position = torch.stack(torch.meshgrid(grid, grid, indexing="ij"), dim=-1).view(-1, 2)
    points = torch.cat(
        [
            F.normalize(patch_tokens.detach().float(), dim=-1),
            (spatial * position / side).expand(batch, -1, -1).float(),
        ],
        dim=-1,
    )
    start = torch.linspace(0, patches - 1, clusters, device=points.device).round().long()
    centres = points[:, start]  # (B, K, d)
    for _ in range(iters):
        assign = torch.cdist(points, centres).argmin(dim=-1)  # (B, P)
        onehot = F.one_hot(assign, clusters).to(points.dtype)  # (B, P, K)
        counts = onehot.sum(dim=1).unsqueeze(-1)
        moved = onehot.transpose(1, 2) @ points / counts.clamp(min=1)
        centres = torch.where(counts > 0, moved, centres)  # an emptied cluster keeps its centre
    return torch.cdist(points, centres).argmin(dim=-1)


@VISUAL_ENCODERS.register("panoptic_instances")
class PanopticInstanceEncoder(nn.Module):
    """Image `(B, 3, H, W)` [+ instance map `(B, H, W)`] -> `VisualFeatures` with one token per
    segment `(B, K, dim)`, its `mask` and the pixel-to-token `segments` map."""

    # the data side reads this (`models.factory.reads_instance_maps`) and serves panoptic maps
    reads_instance_maps = True

    def __init__(self, cfg: VisualConfig, image_size: int) -> None:
        super().__init__()
        if cfg.max_instances < 1:
            raise ValueError(
                f"model.visual.max_instances must be at least 1, got {cfg.max_instances}"
            )
        self.patches = VisualConcreteEncoder(cfg, image_size)
        self.image_size, self.patch_size, self.dim = image_size, cfg.patch_size, cfg.dim
        self.side = image_size // cfg.patch_size
        self.max_instances = cfg.max_instances
        self.segments = cfg.segments
        self.kmeans_iters, self.kmeans_spatial = cfg.kmeans_iters, cfg.kmeans_spatial
        self.norm = nn.LayerNorm(cfg.dim)

    @property
    def n_tokens(self) -> int:
        """Tokens per image: K, padded instances included (the export contract's rows)."""
        return self.max_instances

    def fallback_map(self, patch_tokens: Tensor) -> Tensor:
        """K-means segments of the patch tokens as an instance map `(B, H, W)` (each pixel takes
        its patch's cluster)."""
        assign = kmeans_segments(
            patch_tokens, self.side, self.max_instances, self.kmeans_iters, self.kmeans_spatial
        ).view(-1, self.side, self.side)
        size = self.patch_size
        return assign.repeat_interleave(size, dim=1).repeat_interleave(size, dim=2)

    def forward(self, image: Tensor, instance_map: Tensor | None = None) -> VisualFeatures:
        """`(B, 3, H, W)` in [0, 1] and the panoptic instance map `(B, H, W)` (None, or
        `segments: kmeans`: k-means segments) -> K instance tokens with mask and segments."""
        patches = self.patches(image)
        patch_tokens = patches.tokens[:, patches.grid.start : patches.grid.stop]
        if instance_map is None or self.segments == "kmeans":
            instance_map = self.fallback_map(patch_tokens)
        elif instance_map.shape != (image.shape[0], *image.shape[-2:]):
            raise ValueError(
                f"instance map {tuple(instance_map.shape)} does not match images "
                f"{tuple(image.shape)}"
            )
        instance_map = instance_map.long()
        areas = segment_areas(instance_map, self.patch_size, self.max_instances)
        nodes, mask = pool_instances(patch_tokens, areas)
        tokens = self.norm(nodes) * mask.unsqueeze(-1)  # padding stays an exact zero token
        segments = instance_map.masked_fill(instance_map < 0, -1)
        # hidden states: the patch encoder's, over its [CLS] and patch tokens
        return VisualFeatures(tokens, patches.hidden_states, mask=mask, segments=segments)
