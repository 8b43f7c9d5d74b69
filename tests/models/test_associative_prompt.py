"""The cross-modal associative prompt layer: swap filling puts exactly the other modality's
feature for the same anchor at each masked anchor and changes nothing else; negatives take a
feature that does not carry the anchor's entity. NumPy oracles on hand-written anchors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ash_neuro.models.associative_prompt import (
    AnchorBatch,
    SwapFilling,
    dominant_tokens,
    object_token_weights,
)
from tests.cmal_fixtures import CIRCLE, ENTITIES, HEXAGON, RED, scene

L, N, E = 7, 5, 4  # tokens per caption, visual tokens per image, sphere width


def unit(rng: np.random.Generator, *shape: int) -> np.ndarray:
    x = rng.standard_normal(shape)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def normed(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x)


TOKEN_MASK = torch.tensor([[True] * 5, [True] * 4 + [False]])


def prompt_of(t: np.ndarray, v: np.ndarray, negative_prob: float = 0.0):
    anchors = scene()
    weights = object_token_weights(anchors, N, None, exact=True)
    layer = SwapFilling(mask_prob=1.0, negative_prob=negative_prob)
    return layer(
        torch.from_numpy(t).float(), torch.from_numpy(v).float(), TOKEN_MASK, anchors, weights
    )


def test_swap_filling_puts_the_other_modalitys_feature_at_masked_anchors_only():
    rng = np.random.default_rng(0)
    t, v = unit(rng, 2, L, E), unit(rng, 2, N, E)
    prompt = prompt_of(t, v)

    text = t.copy()
    text[0, 2] = normed(v[0, 2] + v[0, 3])  # "red": both red objects' features, renormalised
    text[0, 3] = text[0, 4] = v[0, 2]  # "ball", two tokens: the circle's feature at each
    text[0, 6] = v[0, 4]  # "hexagon": the hexagon's
    text[1, 1] = normed(v[1, :4].sum(axis=0))  # "star", no tags: the image's real tokens
    visual = v.copy()
    visual[0, 2] = normed(t[0, 2] + normed(t[0, 3] + t[0, 4]))  # the circle: "red" and "ball"
    visual[0, 3] = t[0, 2]  # the square: "red"
    visual[0, 4] = t[0, 6]  # the hexagon: "hexagon"
    np.testing.assert_allclose(prompt.text.numpy(), text, atol=1e-6)
    np.testing.assert_allclose(prompt.visual.numpy(), visual, atol=1e-6)
    assert prompt.text_swapped.tolist() == [
        [False, False, True, True, True, False, True],
        [False, True, False, False, False, False, False],
    ]
    assert prompt.visual_swapped.tolist() == [[False, False, True, True, True], [False] * 5]
    assert prompt.anchor_filled.tolist() == [[True, True, True], [True, False, False]]
    assert prompt.anchor_belongs.tolist() == [[1, 1, 1], [1, 1, 1]]
    assert prompt.slot_belongs[prompt.visual_swapped].tolist() == [1, 1, 1]
    entities = prompt.slot_entities[0].numpy()
    expected = np.zeros((N, ENTITIES))
    expected[2, [CIRCLE, RED]] = 0.5
    expected[3, RED] = expected[4, HEXAGON] = 1.0
    np.testing.assert_allclose(entities, expected)


def key(x: np.ndarray | torch.Tensor) -> tuple:
    """A feature as a hashable tuple (5 decimals)."""
    return tuple(torch.as_tensor(x).float().round(decimals=5).tolist())


def test_negatives_take_a_feature_without_the_anchors_entity_same_image_first():
    rng = np.random.default_rng(1)
    t, v = unit(rng, 2, L, E), unit(rng, 2, N, E)
    seen: dict[tuple, set] = {}

    def record(side: str, b: int, position: int, features: torch.Tensor) -> None:
        seen.setdefault((side, b, position), set()).add(key(features[b, position]))

    for seed in range(40):
        torch.manual_seed(seed)
        prompt = prompt_of(t, v, negative_prob=1.0)
        assert prompt.anchor_belongs[prompt.anchor_filled].tolist() == [0, 0, 0, 0]
        assert prompt.slot_belongs[prompt.visual_swapped].tolist() == [0, 0, 0]
        for b, position in ((0, 2), (0, 3), (0, 6), (1, 1)):
            record("text", b, position, prompt.text)
        for k in (2, 3, 4):
            record("visual", 0, k, prompt.visual)

    ball = normed(t[0, 3] + t[0, 4])
    # text side: objects of the same image that do not carry the entity
    assert seen[("text", 0, 2)] == {key(v[0, 4])}  # "red": only the blue hexagon
    assert seen[("text", 0, 3)] == {key(v[0, 3]), key(v[0, 4])}  # "ball": square, hexagon
    assert seen[("text", 0, 6)] == {key(v[0, 2]), key(v[0, 3])}  # "hexagon": the red two
    assert seen[("text", 1, 1)] == {key(normed(v[0].sum(axis=0)))}  # no tags: another image
    # visual side: anchors of the same caption whose entity the object does not carry
    assert seen[("visual", 0, 2)] == {key(t[0, 6])}  # red circle: "hexagon"
    assert seen[("visual", 0, 3)] == {key(ball), key(t[0, 6])}  # red square: "ball", "hexagon"
    assert seen[("visual", 0, 4)] == {key(t[0, 2]), key(ball)}  # blue hexagon: "red", "ball"


def test_a_position_without_a_wrong_candidate_stays_a_true_fill():
    """One image whose only object is the red circle: nothing lacks "red"."""
    anchors = AnchorBatch(
        anchor_token=torch.tensor([[-1, 0, -1]]),
        anchor_entity=torch.tensor([[RED]]),
        anchor_objects=torch.tensor([[[True]]]),
        object_instance=torch.tensor([[2]]),
        object_box=torch.zeros(1, 1, 4),
        object_entity=torch.nn.functional.one_hot(torch.tensor([[RED]]), ENTITIES).bool(),
        object_mask=torch.tensor([[True]]),
    )
    rng = np.random.default_rng(2)
    t, v = torch.from_numpy(unit(rng, 1, 3, E)).float(), torch.from_numpy(unit(rng, 1, 3, E))
    weights = object_token_weights(anchors, 3, None, exact=True)
    prompt = SwapFilling(1.0, 1.0)(
        t, v.float(), torch.ones(1, 3, dtype=torch.bool), anchors, weights
    )
    assert prompt.anchor_belongs.tolist() == [[1]] and prompt.slot_belongs[0, 2].item() == 1
    assert torch.allclose(prompt.text[0, 1], v[0, 2].float())
    assert torch.allclose(prompt.visual[0, 2], t[0, 1])


def test_unselected_anchors_keep_their_own_features():
    rng = np.random.default_rng(3)
    t, v = unit(rng, 2, L, E), unit(rng, 2, N, E)
    anchors = scene()
    weights = object_token_weights(anchors, N, None, exact=True)
    torch.manual_seed(0)
    prompt = SwapFilling(mask_prob=0.5, negative_prob=0.0)(
        torch.from_numpy(t).float(), torch.from_numpy(v).float(), TOKEN_MASK, anchors, weights
    )
    filled = prompt.anchor_filled
    assert 0 < int(filled.sum()) < 4  # some anchors drawn, not all
    token_anchor = anchors.anchor_token
    for b in range(2):
        for position in range(L):
            a = int(token_anchor[b, position])
            swapped = a >= 0 and bool(filled[b, a])
            assert bool(prompt.text_swapped[b, position]) == swapped
            if not swapped:
                assert np.allclose(prompt.text[b, position].numpy(), t[b, position])


def test_objects_located_by_box_weigh_the_segments_under_the_box():
    segments = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2], [2, 2, 2, 2]]])
    anchors = AnchorBatch(
        anchor_token=torch.full((1, 2), -1),
        anchor_entity=torch.full((1, 0), -1),
        anchor_objects=torch.zeros(1, 0, 3, dtype=torch.bool),
        object_instance=torch.tensor([[-1, -1, 1]]),
        # the top-left quarter, the left half, padding
        object_box=torch.tensor([[[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 1.0], [0, 0, 0, 0]]]),
        object_entity=torch.zeros(1, 3, ENTITIES, dtype=torch.bool),
        object_mask=torch.tensor([[True, True, False]]),
    )
    weights = object_token_weights(anchors, 3, segments, exact=False)
    # box 0 covers 4 pixels of segment 0; box 1 covers 4 of segment 0 and 4 of segment 2
    expected = [[[1.0, 0.0, 0.0], [0.5, 0.0, 0.5], [0.0, 0.0, 0.0]]]
    np.testing.assert_allclose(weights.numpy(), expected)
    assert dominant_tokens(weights).tolist() == [[0, 0, -1]]  # half is enough; a tie: the first
    exact = object_token_weights(anchors, 3, segments, exact=True)  # ids are used where given
    assert exact[0, 2].tolist() == [0.0, 0.0, 0.0]  # still padding
    split = torch.tensor([[[0.4, 0.3, 0.3]]])
    assert dominant_tokens(split).tolist() == [[-1]]  # no token holds half of it


def test_an_instance_id_beyond_the_visual_tokens_is_a_one_line_error():
    anchors = scene()
    with pytest.raises(Exception, match=r"instance id reaches 4; .* 4 tokens"):
        object_token_weights(anchors, 4, None, exact=True)
