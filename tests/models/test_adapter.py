"""The adapter: spike rates and ANN tokens joined into one set of visual tokens."""

from __future__ import annotations

import pytest
import torch

from ash_neuro.models.adapter import Adapter


def test_hybrid_appends_one_token_per_spiking_token_from_rates_over_time():
    torch.manual_seed(0)
    adapter = Adapter(dim=8, spike_dim=6)
    ann = torch.randn(2, 5, 8)
    spikes = (torch.rand(4, 2, 5, 6) < 0.3).float()
    joined = adapter(ann, spikes)
    assert joined.shape == (2, 10, 8)
    rates = spikes.mean(0)
    expected = adapter.norm(torch.cat([adapter.ann_proj(ann), adapter.spike_proj(rates)], 1))
    torch.testing.assert_close(joined, expected)
    # reordering the time steps leaves the rates, hence the tokens, unchanged
    torch.testing.assert_close(adapter(ann, spikes.flip(0)), joined)


def test_both_sides_share_one_norm_and_width():
    adapter = Adapter(dim=8, spike_dim=6)
    joined = adapter(torch.randn(2, 5, 8) * 100, torch.ones(3, 2, 5, 6))
    assert torch.allclose(joined.pow(2).mean(-1), torch.ones(2, 10), atol=1e-3)


def test_ann_only_passes_only_the_ann_tokens():
    adapter = Adapter(dim=8, spike_dim=None)
    assert adapter.spike_proj is None
    assert adapter(torch.randn(2, 5, 8)).shape == (2, 5, 8)
    with pytest.raises(ValueError, match="without a spiking input"):
        adapter(torch.randn(2, 5, 8), torch.ones(3, 2, 5, 6))
