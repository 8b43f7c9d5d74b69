"""Graph attention over instances: the graph built from a known layout, and the layer against a
NumPy GATv2 over that graph (so the wiring, the global node and the padding are checked, not
only PyG)."""

from __future__ import annotations

import numpy as np
import torch

from ash_neuro.config import GraphConfig
from ash_neuro.models.instance_graph import (
    InstanceGraphAttention,
    instance_edges,
    segment_adjacency,
)
from ash_neuro.models.outputs import VisualFeatures

# Four segments of a 4x4 image (-1: void pixels of no segment).
LAYOUT = torch.tensor(
    [
        [0, 0, 1, 1],
        [0, 0, 1, 1],
        [0, 0, 2, 2],
        [-1, -1, 3, 2],
    ]
)
# By hand, 4-neighbour pairs: 0-1 (rows 0 and 1, columns 1|2), 0-2 (row 2, columns 1|2), 1-2
# (columns 2 and 3, rows 1|2), 2-3 (row 3, columns 2|3; column 2, rows 2|3). 0 and 3 meet only
# diagonally, at (2, 1) and (3, 2); void pixels join nothing.
ADJACENT = {(0, 1), (0, 2), (1, 2), (2, 3)}


def test_adjacency_of_a_known_layout():
    adjacency = segment_adjacency(LAYOUT[None], 5)[0]
    expected = torch.zeros(5, 5, dtype=torch.bool)
    for i, j in ADJACENT:
        expected[i, j] = expected[j, i] = True
    assert torch.equal(adjacency, expected)  # segment 4 is absent: no edge


def test_edges_join_touching_real_instances_and_the_global_node_per_image():
    adjacency = segment_adjacency(torch.stack([LAYOUT, LAYOUT]), 4)
    mask = torch.tensor([[True, True, True, True], [True, True, True, False]])
    edges = instance_edges(adjacency, mask)
    found = {(int(s), int(t)) for s, t in edges.T}
    expected = set()
    for image, real in enumerate(mask.tolist()):
        base = image * 5  # K + 1 nodes per image, the global node last
        kept = {(i, j) for i, j in ADJACENT if real[i] and real[j]}
        expected |= {(base + i, base + j) for i, j in kept} | {
            (base + j, base + i) for i, j in kept
        }
        for k in range(4):
            if real[k]:
                expected |= {(base + k, base + 4), (base + 4, base + k)}
    assert found == expected
    assert (0 + 2, 0 + 3) in found and (5 + 2, 5 + 3) not in found  # padding has no edge


def numpy_gatv2(x, edges, layer) -> np.ndarray:
    """GATv2 (Brody et al. 2022) by its definition: for target i over sources j in N(i) + {i},
    e_ij = a . LeakyReLU_0.2(W_l x_j + W_r x_i) per head, softmax over j, out_i = sum_j a_ij
    W_l x_j, heads concatenated, plus the bias."""
    p = {k: v.detach().double().numpy() for k, v in layer.state_dict().items()}
    heads, channels = p["att"].shape[1:]
    left = x @ p["lin_l.weight"].T + p["lin_l.bias"]
    right = x @ p["lin_r.weight"].T + p["lin_r.bias"]
    n = len(x)
    sources = {i: {i} for i in range(n)}
    for s, t in edges.T.tolist():
        sources[t].add(s)
    out = np.zeros((n, heads * channels))
    for i in range(n):
        js = sorted(sources[i])
        for h in range(heads):
            cols = slice(h * channels, (h + 1) * channels)
            z = left[js, cols] + right[i, cols]
            z = np.where(z > 0, z, 0.2 * z)
            e = z @ p["att"][0, h]
            a = np.exp(e - e.max())
            a /= a.sum()
            out[i, cols] = a @ left[js, cols]
    return out + p["bias"]


def layer_norm(x: np.ndarray, norm) -> np.ndarray:
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    scale = norm.weight.detach().double().numpy()
    return (x - mean) / np.sqrt(var + norm.eps) * scale + norm.bias.detach().double().numpy()


def test_one_layer_equals_numpy_gatv2_with_residual_and_norm_and_masks_padding():
    torch.manual_seed(0)
    graph = InstanceGraphAttention(GraphConfig(kind="gat", depth=1, heads=2), dim=4).double()
    with torch.no_grad():
        graph.global_offset.copy_(torch.tensor([0.5, -0.5, 0.25, 0.0]))
        graph.layers[0].bias.normal_()
    segments = torch.stack([LAYOUT, LAYOUT])
    tokens = torch.randn(2, 4, 4, dtype=torch.float64)
    mask = torch.tensor([[True, True, True, True], [True, True, True, False]])
    tokens[1, 3] = 0.0  # a padded token is zero, as the instance encoder leaves it
    out = graph(VisualFeatures(tokens, mask=mask, segments=segments))
    assert out.mask is mask and out.segments is segments

    adjacency = segment_adjacency(segments, 4)
    for image in range(2):
        real = mask[image].numpy()
        x = tokens[image].numpy()
        scene = x[real].mean(axis=0) + graph.global_offset.detach().numpy()
        nodes = np.concatenate([x, scene[None]])
        edges = instance_edges(adjacency[image : image + 1], mask[image : image + 1]).numpy()
        expected = layer_norm(nodes + numpy_gatv2(nodes, edges, graph.layers[0]), graph.norms[0])
        expected = expected[:4] * real[:, None]
        np.testing.assert_allclose(out.tokens[image].detach().numpy(), expected, atol=1e-10)
    assert torch.equal(out.tokens[1, 3], torch.zeros(4, dtype=torch.float64))


def test_a_padded_token_does_not_reach_the_real_ones():
    torch.manual_seed(1)
    graph = InstanceGraphAttention(GraphConfig(kind="gat", depth=2, heads=2), dim=4)
    mask = torch.tensor([[True, True, True, False]])
    tokens = torch.randn(1, 4, 4)
    first = graph(VisualFeatures(tokens, mask=mask, segments=LAYOUT[None])).tokens
    tokens[0, 3] = 100.0
    second = graph(VisualFeatures(tokens, mask=mask, segments=LAYOUT[None])).tokens
    assert torch.equal(first, second)
