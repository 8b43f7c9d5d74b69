"""Graph attention over instance tokens (GSHN, arXiv 2501.19069): the continuous branch.

Registered as the graph encoder "gat" (and "none", no graph encoder). It reads the visual
encoder's segment tokens (`VisualFeatures` of "panoptic_instances": tokens, mask, segments) and
returns the same record with each real token replaced by its graph-attended features F_GAT;
the spiking encoder reads the tokens before it, and the adapter ("ratio") joins both.

The graph, per image, from the segments map:

    local   segments i != j are joined when they touch: a pixel of i has a 4-neighbour in j
            (`segment_adjacency`), in both directions;
    global  one extra node per image, joined both ways to every real instance; it starts as
            the mean of the image's real tokens plus a learned offset, so that every instance
            reads the whole scene within one layer and two instances that do not touch within
            two;
    padded  instances (mask False) have no edge and are zeroed on the way out.

Each layer is PyTorch Geometric's `GATv2Conv` (Brody et al., ICLR 2022: attention
a^T LeakyReLU(W [x_i || x_j]), softmax over a node's in-neighbours and itself) with `heads`
heads of dim / heads channels concatenated, a residual connection and a LayerNorm. GATv2
rather than GAT's static attention: with a handful of nodes per image, which neighbour matters
must depend on the receiving node. The images of a batch are one disjoint graph of
B * (K + 1) nodes, as PyG batches graphs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ash_neuro.config import GraphConfig
from ash_neuro.models.outputs import VisualFeatures, token_mean
from ash_neuro.registry import GRAPH_ENCODERS


def segment_adjacency(segments: Tensor, count: int) -> Tensor:
    """Segments map `(B, H, W)` int64 (ids in [0, count), -1 none) -> `(B, count, count)` bool,
    True where segments i != j touch (a pixel of one has a 4-neighbour in the other)."""
    batch = segments.shape[0]
    onehot = F.one_hot(segments.clamp(min=0), count).float()
    onehot = onehot * (segments >= 0).unsqueeze(-1)

    def touching(a: Tensor, b: Tensor) -> Tensor:  # neighbouring pixel pairs per segment pair
        return a.reshape(batch, -1, count).transpose(1, 2) @ b.reshape(batch, -1, count)

    pairs = touching(onehot[:, :, :-1], onehot[:, :, 1:]) + touching(onehot[:, :-1], onehot[:, 1:])
    pairs = pairs + pairs.transpose(1, 2)
    eye = torch.eye(count, dtype=torch.bool, device=segments.device)
    return (pairs > 0) & ~eye


def instance_edges(adjacency: Tensor, mask: Tensor) -> Tensor:
    """Adjacency `(B, K, K)` bool and mask `(B, K)` bool -> `edge_index` `(2, E)` int64 (row 0
    sources, row 1 targets) over B * (K + 1) nodes: node b * (K + 1) + k is instance k of image
    b, node b * (K + 1) + K its global node; edges between touching real instances and between
    the global node and every real instance, both ways."""
    batch, k = mask.shape
    dense = torch.zeros(batch, k + 1, k + 1, dtype=torch.bool, device=mask.device)
    dense[:, :k, :k] = adjacency & mask.unsqueeze(1) & mask.unsqueeze(2)
    dense[:, k, :k] = mask
    dense[:, :k, k] = mask
    image, target, source = dense.nonzero(as_tuple=True)
    offset = image * (k + 1)
    return torch.stack([offset + source, offset + target])


@GRAPH_ENCODERS.register("gat")
class InstanceGraphAttention(nn.Module):
    """Segment tokens `(B, K, dim)` with mask and segments -> graph-attended tokens `(B, K,
    dim)` (zero where padded), in a `VisualFeatures` that keeps the rest of the record."""

    def __init__(self, cfg: GraphConfig, dim: int) -> None:
        super().__init__()
        from torch_geometric.nn import GATv2Conv  # imported with the component only

        if dim % cfg.heads:
            raise ValueError(f"graph heads {cfg.heads} must divide the visual width {dim}")
        self.global_offset = nn.Parameter(torch.zeros(dim))
        self.layers = nn.ModuleList(
            GATv2Conv(dim, dim // cfg.heads, heads=cfg.heads) for _ in range(cfg.depth)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(cfg.depth))

    def forward(self, features: VisualFeatures) -> VisualFeatures:
        if features.segments is None:
            raise ValueError(
                "model.graph.kind=gat needs segment tokens (model.visual.kind=panoptic_instances)"
            )
        tokens = features.tokens
        batch, k, dim = tokens.shape
        mask = features.mask
        if mask is None:
            mask = torch.ones(batch, k, dtype=torch.bool, device=tokens.device)
        edges = instance_edges(segment_adjacency(features.segments, k), mask)
        scene = token_mean(tokens, mask) + self.global_offset
        x = torch.cat([tokens, scene.unsqueeze(1)], dim=1).reshape(batch * (k + 1), dim)
        for layer, norm in zip(self.layers, self.norms):
            x = norm(x + layer(x, edges))
        out = x.view(batch, k + 1, dim)[:, :k] * mask.unsqueeze(-1)
        return VisualFeatures(
            out, features.hidden_states, features.grid, features.mask, features.segments
        )


@GRAPH_ENCODERS.register("none")
def no_graph_encoder(cfg: GraphConfig, dim: int) -> None:
    """No graph encoder: the adapter reads the visual encoder's tokens as they are."""
    return None
