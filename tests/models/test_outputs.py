"""The encoders' output records: `VisualOutput.select` and `concat` keep each image's rows."""

from __future__ import annotations

import torch

from ash_neuro.models.outputs import (
    SpikeTrains,
    TextFeatures,
    TextOutput,
    TokenGrid,
    VisualFeatures,
    VisualOutput,
)

GRID = TokenGrid(start=1, rows=1, cols=2)


def visual(batch: int = 3, hybrid: bool = True, offset: float = 0.0) -> VisualOutput:
    """Image b's every entry is offset + b (+ a position code), so a row tells its image."""
    image = offset + torch.arange(batch, dtype=torch.float32)
    tokens = image.view(-1, 1, 1) + torch.arange(6.0).view(1, 6, 1) / 10 + torch.zeros(1, 1, 4)
    ann = image.view(-1, 1, 1) + torch.zeros(batch, 3, 4)
    spiking = None
    if hybrid:
        spikes = image.view(1, -1, 1, 1) + torch.arange(2.0).view(2, 1, 1, 1) / 10
        spikes = spikes.expand(2, batch, 3, 5)
        spiking = SpikeTrains(spikes, {"lif1": spikes}, {"lif1": spikes.mean()})
    return VisualOutput(
        tokens=tokens,
        grids=(GRID, TokenGrid(start=4, rows=1, cols=2)),
        features=VisualFeatures(
            ann, hidden_states=(ann, ann), grid=GRID, mask=torch.arange(batch)[:, None] != 1
        ),
        spiking=spiking,
        image_embed=image.view(-1, 1).expand(batch, 8),
        spike_embed=image.view(-1, 1).expand(batch, 8) * 2 if hybrid else None,
    )


def test_select_keeps_the_chosen_images_in_the_given_order():
    full = visual()
    part = full.select(torch.tensor([2, 0]))
    assert torch.equal(part.tokens[:, 0, 0], torch.tensor([2.0, 0.0]))
    assert torch.equal(part.tokens, torch.stack([full.tokens[2], full.tokens[0]]))
    assert torch.equal(part.features.tokens[:, 0, 0], torch.tensor([2.0, 0.0]))
    assert torch.equal(part.features.mask, torch.tensor([[True], [True]]))
    assert torch.equal(part.image_embed[:, 0], torch.tensor([2.0, 0.0]))
    assert torch.equal(part.spike_embed[:, 0], torch.tensor([4.0, 0.0]))
    # spikes are (T, B, n, D): the images are the second axis; both steps are kept
    assert part.spikes.shape == (2, 2, 3, 5)
    assert torch.equal(part.spikes[:, :, 0, 0], torch.tensor([[2.0, 0.0], [2.1, 0.1]]))
    assert part.grids == full.grids and part.features.grid == GRID
    # per-batch records are dropped, not sliced
    assert part.spike_rates == {} and part.spiking.layers == {}
    assert part.features.hidden_states == ()


def test_select_and_concat_without_a_spiking_encoder():
    full = visual(hybrid=False)
    part = full.select(torch.tensor([1]))
    assert part.spiking is None and part.spikes is None and part.spike_embed is None
    assert torch.equal(part.image_embed, torch.ones(1, 8))
    joined = VisualOutput.concat([part, full.select(torch.tensor([0]))])
    assert joined.spiking is None and joined.spike_embed is None
    assert torch.equal(joined.tokens[:, 0, 0], torch.tensor([1.0, 0.0]))


def test_concat_joins_batches_along_the_image_axis():
    a, b = visual(batch=2), visual(batch=3, offset=10.0)
    joined = VisualOutput.concat([a, b])
    images = torch.tensor([0.0, 1.0, 10.0, 11.0, 12.0])
    assert torch.equal(joined.tokens[:, 0, 0], images)
    assert torch.equal(joined.features.tokens[:, 0, 0], images)
    assert torch.equal(joined.image_embed[:, 0], images)
    assert torch.equal(joined.spike_embed[:, 0], 2 * images)
    assert torch.equal(joined.spikes[0, :, 0, 0], images)
    assert torch.equal(joined.spikes[1, :, 0, 0], images + 0.1)
    mask = torch.tensor([True, False, True, False, True])
    assert torch.equal(joined.features.mask[:, 0], mask)
    assert joined.grids == a.grids and joined.spike_rates == {}
    # select undoes concat
    back = joined.select(torch.tensor([2, 3, 4]))
    assert torch.equal(back.tokens, b.tokens) and torch.equal(back.spikes, b.spikes)


def test_text_output_exposes_the_hidden_states():
    hidden = torch.randn(2, 4, 6)
    text = TextOutput(TextFeatures(hidden, torch.ones(2, 4)), torch.zeros(2, 3))
    assert text.hidden is hidden
    assert TokenGrid(start=3, rows=2, cols=4).stop == 11
