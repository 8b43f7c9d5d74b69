"""H-ITC: ITC summed over aligned layer pairs, weighted; one pair with weight 1 is plain ITC.
The heads read [CLS] of the configured hidden states and refuse the embedded input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ash_neuro.config import AlignmentConfig
from ash_neuro.errors import ConfigError
from ash_neuro.losses.hitc import hierarchical_itc_loss
from ash_neuro.losses.itc import itc_loss
from ash_neuro.models.hierarchical_alignment import HierarchicalAlignment
from ash_neuro.models.outputs import TextFeatures, VisualFeatures


def numpy_itc(image: np.ndarray, text: np.ndarray, t: float, ids: np.ndarray | None) -> float:
    """ALBEF's ITC written out: cross-entropy against uniform targets over the positives, both
    directions, averaged."""
    logits = image.astype(np.float64) @ text.T.astype(np.float64) / t
    ids = np.arange(len(image)) if ids is None else ids
    targets = (ids[:, None] == ids[None, :]).astype(np.float64)
    targets /= targets.sum(axis=1, keepdims=True)

    def cross_entropy(rows: np.ndarray) -> float:
        log_p = rows - rows.max(axis=1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
        return float(-(targets * log_p).sum(axis=1).mean())

    return (cross_entropy(logits) + cross_entropy(logits.T)) / 2


def unit(rows: int, dim: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(rows, dim, generator=generator), dim=-1)


@pytest.mark.parametrize("ids", [None, torch.tensor([3, 3, 5, 8, 8, 1])])
def test_one_pair_of_weight_one_is_plain_itc(ids):
    image, text = unit(6, 8, 0), unit(6, 8, 1)
    value = hierarchical_itc_loss([(image, text)], [1.0], 0.07, ids)
    oracle = numpy_itc(image.numpy(), text.numpy(), 0.07, None if ids is None else ids.numpy())
    assert value.item() == pytest.approx(oracle, rel=1e-5)
    assert value.item() == pytest.approx(itc_loss(image, text, 0.07, ids).item(), rel=1e-6)


def test_pairs_are_summed_with_their_weights():
    pairs = [(unit(5, 4, 2 * k), unit(5, 4, 2 * k + 1)) for k in range(3)]
    weights = [0.5, 2.0, 0.0]
    expected = sum(
        w * numpy_itc(a.numpy(), b.numpy(), 0.1, None) for (a, b), w in zip(pairs, weights)
    )
    value = hierarchical_itc_loss(pairs, weights, torch.tensor(0.1))
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_a_weight_per_pair():
    with pytest.raises(ValueError, match="one each"):
        hierarchical_itc_loss([(unit(2, 3, 0), unit(2, 3, 1))], [1.0, 1.0], 0.1)


def features(batch: int = 3, dim: int = 8, layers: int = 3) -> tuple[VisualFeatures, TextFeatures]:
    torch.manual_seed(0)
    visual = tuple(torch.randn(batch, 5, dim) for _ in range(layers))
    text = tuple(torch.randn(batch, 4, dim) for _ in range(layers))
    return (
        VisualFeatures(visual[-1], hidden_states=visual),
        TextFeatures(text[-1], torch.ones(batch, 4), hidden_states=text),
    )


def test_heads_read_the_cls_position_of_the_paired_layers():
    head = HierarchicalAlignment(AlignmentConfig("hierarchical", [1, -1], [2, 1]), 8, 8, 6)
    visual, text = features()
    pairs = head(visual, text)
    assert len(pairs) == 2
    for image, words in pairs:
        assert image.shape == words.shape == (3, 6)
        torch.testing.assert_close(image.norm(dim=-1), torch.ones(3))
    # pair 0 reads visual layer 1 and text layer 2 at position 0, nothing else
    expected = F.normalize(head.visual_proj[0](visual.hidden_states[1][:, 0]), dim=-1)
    torch.testing.assert_close(pairs[0][0], expected)
    changed = list(visual.hidden_states)
    changed[1] = changed[1].clone()
    changed[1][:, 1:] += 5.0  # the patch positions of the paired layer
    changed[0] = changed[0] + 5.0  # an unpaired layer
    again = head(VisualFeatures(visual.tokens, hidden_states=tuple(changed)), text)
    torch.testing.assert_close(again[0][0], pairs[0][0])
    changed[1][:, 0] += torch.arange(8.0)  # its [CLS] (not a uniform shift: the head normalises)
    again = head(VisualFeatures(visual.tokens, hidden_states=tuple(changed)), text)
    assert not torch.allclose(again[0][0], pairs[0][0])
    torch.testing.assert_close(
        pairs[0][1], F.normalize(head.text_proj[0](text.hidden_states[2][:, 0]), dim=-1)
    )


@pytest.mark.parametrize(("visual_layers", "text_layers"), [([0], [1]), ([1], [-3]), ([3], [1])])
def test_the_embedded_input_or_a_missing_layer_is_one_line_error(visual_layers, text_layers):
    head = HierarchicalAlignment(
        AlignmentConfig("hierarchical", visual_layers, text_layers), 8, 8, 6
    )
    with pytest.raises(ConfigError, match="model.alignment.(visual|text)_layers: layer") as info:
        head(*features())
    assert "\n" not in str(info.value)
