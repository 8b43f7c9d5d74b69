"""Panoptic instance tokens: patch features pooled per segment, against pools worked by hand;
padding, the maximum number of instances, and the k-means fallback."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ash_neuro.config import VisualConfig
from ash_neuro.models.panoptic_instance_encoder import (
    PanopticInstanceEncoder,
    kmeans_segments,
    pool_instances,
    segment_areas,
)

# A 4x4 image of 2x2 patches (row-major p0 p1 / p2 p3) and K = 4 segment ids, id 3 absent:
MAP = torch.tensor(
    [
        [0, 0, 1, 1],
        [0, 2, 1, 1],
        [2, 2, 2, 1],
        [2, 2, 2, 2],
    ]
)
# pixels of each id per patch: p0 {0: 3, 2: 1}, p1 {1: 4}, p2 {2: 4}, p3 {1: 1, 2: 3}
AREAS = [[3, 0, 1, 0], [0, 4, 0, 0], [0, 0, 4, 0], [0, 1, 3, 0]]
PATCHES = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [4.0, 0.0]])
# node k = sum_p a_pk x_p / sum_p a_pk, by hand:
#   node 0 = 3 * p0 / 3                      = (1, 0)
#   node 1 = (4 * p1 + 1 * p3) / 5           = (0.8, 0.8)
#   node 2 = (1 * p0 + 4 * p2 + 3 * p3) / 8  = (21/8, 1)
#   node 3 = nothing: zeros, masked
NODES = torch.tensor([[1.0, 0.0], [0.8, 0.8], [2.625, 1.0], [0.0, 0.0]])


def test_segment_areas_count_each_segments_pixels_per_patch():
    assert segment_areas(MAP[None], patch_size=2, max_instances=4)[0].tolist() == AREAS


def test_pooling_against_hand_computed_pools_with_an_absent_instance():
    nodes, mask = pool_instances(PATCHES[None], segment_areas(MAP[None], 2, 4))
    torch.testing.assert_close(nodes[0], NODES)
    assert mask[0].tolist() == [True, True, True, False]


def test_an_image_with_the_maximum_number_of_instances_and_a_padded_one_in_one_batch():
    full = torch.tensor([[0, 1, 2, 2], [3, 3, 2, 2], [0, 0, 1, 1], [0, 0, 1, 1]])
    # full: p0 {0: 1, 1: 1, 3: 2}, p1 {2: 4}, p2 {0: 4}, p3 {1: 4}
    nodes, mask = pool_instances(
        PATCHES.expand(2, -1, -1), segment_areas(torch.stack([MAP, full]), 2, 4)
    )
    expected_full = torch.tensor(
        [
            [(1 * 1 + 4 * 2) / 5, (0 + 4 * 2) / 5],  # id 0: p0 once, p2 four times
            [(1 * 1 + 4 * 4) / 5, 0.0],  # id 1: p0 once, p3 four times
            [0.0, 1.0],  # id 2: p1
            [1.0, 0.0],  # id 3: p0
        ]
    )
    torch.testing.assert_close(nodes[1], expected_full)
    torch.testing.assert_close(nodes[0], NODES)  # the other image is unaffected
    assert mask.tolist() == [[True, True, True, False], [True] * 4]


def test_ids_beyond_k_are_refused_and_negative_ids_belong_to_no_segment():
    refused = "instance id 4 in the panoptic map; model.visual.max_instances=4 allows"
    with pytest.raises(ValueError, match=refused):
        segment_areas(torch.full((1, 4, 4), 4), 2, 4)
    void = MAP.clone()
    void[0, 0] = -1  # one pixel of segment 0 in p0 becomes void
    nodes, mask = pool_instances(PATCHES[None], segment_areas(void[None], 2, 4))
    torch.testing.assert_close(nodes[0, 0], torch.tensor([1.0, 0.0]))  # 2 * p0 / 2
    assert segment_areas(void[None], 2, 4)[0, 0].tolist() == [2, 0, 1, 0]


def cfg(**changes) -> VisualConfig:
    base = VisualConfig(
        kind="panoptic_instances", patch_size=2, dim=8, depth=1, heads=2, max_instances=4
    )
    return dataclasses.replace(base, **changes)


def test_the_encoder_pools_its_own_patch_tokens_and_zeroes_padding():
    torch.manual_seed(0)
    encoder = PanopticInstanceEncoder(cfg(), image_size=4).eval()
    with torch.no_grad():  # a norm with a bias, which a padded token must not take
        encoder.norm.bias.uniform_(0.5, 1.0)
    image = torch.rand(1, 3, 4, 4)
    features = encoder(image, MAP[None])
    assert features.tokens.shape == (1, 4, 8) and encoder.n_tokens == 4
    assert features.mask.tolist() == [[True, True, True, False]]
    assert torch.equal(features.tokens[0, 3], torch.zeros(8))
    assert torch.equal(features.segments, MAP[None])
    patches = encoder.patches(image).tokens[:, 1:]  # the ViT's patch tokens after [CLS]
    areas = torch.tensor(AREAS, dtype=torch.float32)
    expected = (areas.T @ patches[0]) / areas.sum(dim=0, keepdim=True).T
    expected = torch.nn.functional.layer_norm(
        expected[:3], (8,), encoder.norm.weight, encoder.norm.bias
    )
    torch.testing.assert_close(features.tokens[0, :3], expected)
    assert features.grid is None and features.layouts[0].count == 4


def test_kmeans_separates_two_feature_groups_on_a_known_layout():
    # a 2x2 patch grid: the left column's tokens point one way, the right column's the other
    tokens = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [0.1, 1.0]])[None]
    assign = kmeans_segments(tokens, side=2, clusters=2, iters=5, spatial=0.0)
    # the centres start at patches 0 and 3 (an even spread), so the labels are fixed too
    assert assign.tolist() == [[0, 1, 0, 1]]


def test_without_a_map_the_fallback_segments_whole_patches():
    torch.manual_seed(0)
    encoder = PanopticInstanceEncoder(cfg(max_instances=3), image_size=4).eval()
    image = torch.rand(2, 3, 4, 4)
    features = encoder(image)
    segments = features.segments
    assert segments.shape == (2, 4, 4) and 0 <= segments.min() and segments.max() < 3
    # each 2x2 patch is one segment: the map is constant inside every patch
    blocks = segments.view(2, 2, 2, 2, 2).permute(0, 1, 3, 2, 4).reshape(2, 4, 4)
    assert (blocks == blocks[..., :1]).all()
    present = [[bool((segments[b] == k).any()) for k in range(3)] for b in range(2)]
    assert features.mask.tolist() == present
    # segments: kmeans ignores a given map
    forced = PanopticInstanceEncoder(cfg(max_instances=3, segments="kmeans"), image_size=4)
    forced.load_state_dict(encoder.state_dict())
    forced.eval()
    assert torch.equal(forced(image, torch.zeros(2, 4, 4, dtype=torch.long)).segments, segments)
