"""Spatio-temporal spike contrast: time steps and views of one image are positives."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ash_neuro.losses.spike_contrastive import pool_spikes, spike_contrastive_loss


def image_spikes(batch=6, time=4, tokens=5, dim=32, rate=0.3, seed=0):
    """Each image fires its own random pattern, the same at every step."""
    g = torch.Generator().manual_seed(seed)
    pattern = (torch.rand(batch, tokens, dim, generator=g) < rate).float()
    return pattern.unsqueeze(0).expand(time, -1, -1, -1)


def test_closed_form_for_two_orthogonal_images():
    # B=2, T=2: image 0 is e0 at both steps, image 1 is e1. For each anchor: one positive
    # (sim 1), two negatives (sim 0).
    reps = torch.zeros(2, 2, 4)
    reps[:, 0, 0] = 1.0
    reps[:, 1, 1] = 1.0
    tau = 0.5
    plain = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + 2))
    assert spike_contrastive_loss(reps, temperature=tau).item() == pytest.approx(plain, rel=1e-5)
    # the hardest negative (either; both have sim 0) weighted 3: denominator e^2 + 3 + 1
    hard = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + 4))
    loss = spike_contrastive_loss(reps, temperature=tau, hard_negatives=1, hard_negative_weight=3)
    assert loss.item() == pytest.approx(hard, rel=1e-5)


def test_aligned_spikes_cost_less_than_shuffled():
    spikes = image_spikes()
    view = image_spikes()  # the augmented view fires like the original
    aligned = spike_contrastive_loss(spikes, view, temperature=0.1)
    # every time step shows another image: the "same image" positives disagree
    shuffled = torch.stack([spikes[t, torch.roll(torch.arange(6), t)] for t in range(4)])
    assert spike_contrastive_loss(shuffled, view, temperature=0.1) > aligned + 1.0


def test_hard_negatives_weigh_more():
    torch.manual_seed(0)
    spikes = (torch.rand(4, 8, 5, 16) < 0.3).float()
    plain = spike_contrastive_loss(spikes, temperature=0.1)
    hard = spike_contrastive_loss(spikes, temperature=0.1, hard_negatives=3, hard_negative_weight=2)
    assert hard > plain
    same = spike_contrastive_loss(spikes, temperature=0.1, hard_negatives=3, hard_negative_weight=1)
    torch.testing.assert_close(same, plain)


def test_image_ids_make_duplicates_positives():
    spikes = image_spikes(batch=4)
    spikes = spikes[:, [0, 0, 1, 2]]  # items 0 and 1 are the same image
    ids = torch.tensor([5, 5, 6, 7])
    hard = {"temperature": 0.1, "hard_negatives": 1, "hard_negative_weight": 5.0}
    # without ids the duplicate is every anchor's hardest "negative" (similarity 1)
    with_ids = spike_contrastive_loss(spikes, image_ids=ids, **hard)
    assert with_ids < spike_contrastive_loss(spikes, **hard) - 0.1


def test_windows_pool_consecutive_steps():
    spikes = torch.arange(5.0).view(5, 1, 1, 1).expand(5, 2, 3, 4)
    pooled = pool_spikes(spikes, window=2)
    assert pooled.shape == (3, 2, 4)
    torch.testing.assert_close(pooled[:, 0, 0], torch.tensor([0.5, 2.5, 4.0]))
    assert pool_spikes(spikes[:, :, 0]).shape == (5, 2, 4)


def test_one_representation_per_image_is_refused():
    with pytest.raises(ValueError, match="two views"):
        spike_contrastive_loss(torch.ones(1, 3, 4, 5))
    # one step but two views: each image's other view is its one positive
    g = torch.Generator().manual_seed(3)
    a, b = torch.rand(1, 3, 4, 5, generator=g), torch.rand(1, 3, 4, 5, generator=g)
    expected = numpy_spike_contrastive(
        [a.double().numpy(), b.double().numpy()], 0.1, 0, 1.0, 1, [0, 1, 2]
    )
    assert spike_contrastive_loss(a, b).item() == pytest.approx(expected, rel=1e-5)


def test_gradient_reaches_both_views():
    a = torch.rand(3, 4, 5, 6, requires_grad=True)
    b = torch.rand(3, 4, 5, 6, requires_grad=True)
    spike_contrastive_loss(a, b, hard_negatives=2, hard_negative_weight=2).backward()
    assert a.grad.abs().sum() > 0 and b.grad.abs().sum() > 0


def numpy_spike_contrastive(views, temperature, hard_negatives, hard_weight, window, ids):
    """The docstring's L_out with top-k hard negatives weighted, loop by loop in NumPy."""
    reps = []
    for spikes in views:
        pooled = spikes.mean(axis=2)  # (T, B, D)
        for start in range(0, len(pooled), window):
            reps.append(pooled[start : start + window].mean(axis=0))
    batch = reps[0].shape[0]
    z = np.concatenate(reps)  # representation r of image b at row r * B + b
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    logits = z @ z.T / temperature
    n = len(z)
    image = [ids[i % batch] for i in range(n)]
    negatives_per_row = [sum(image[j] != image[i] for j in range(n)) for i in range(n)]
    k = min(hard_negatives, min(negatives_per_row))
    losses = []
    for i in range(n):
        negatives = [j for j in range(n) if image[j] != image[i]]
        positives = [j for j in range(n) if j != i and image[j] == image[i]]
        hard = (
            set(sorted(negatives, key=lambda j: -logits[i, j])[:k]) if hard_weight != 1 else set()
        )
        denominator = sum(np.exp(logits[i, j]) for j in positives)
        denominator += sum(
            (hard_weight if j in hard else 1.0) * np.exp(logits[i, j]) for j in negatives
        )
        losses.append(-np.mean([logits[i, p] - np.log(denominator) for p in positives]))
    return float(np.mean(losses))


@pytest.mark.parametrize(
    ("hard_negatives", "hard_weight", "window", "ids", "two_views"),
    [
        (0, 1.0, 1, None, False),
        (3, 2.0, 1, None, True),
        (2, 4.0, 2, [0, 0, 1, 2, 2], True),
        (1, 0.5, 3, [1, 2, 3, 1, 5], False),
    ],
)
def test_equals_a_numpy_loop_of_the_formula(hard_negatives, hard_weight, window, ids, two_views):
    g = torch.Generator().manual_seed(7)
    spikes = (torch.rand(5, 5, 3, 6, generator=g) < 0.4).float()
    other = (torch.rand(5, 5, 3, 6, generator=g) < 0.4).float() if two_views else None
    loss = spike_contrastive_loss(
        spikes,
        other,
        temperature=0.2,
        hard_negatives=hard_negatives,
        hard_negative_weight=hard_weight,
        window=window,
        image_ids=None if ids is None else torch.tensor(ids),
    )
    views = [spikes.double().numpy()] + ([other.double().numpy()] if two_views else [])
    expected = numpy_spike_contrastive(
        views, 0.2, hard_negatives, hard_weight, window, ids or list(range(5))
    )
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_masked_tokens_are_left_out_of_the_pooled_rates():
    spikes = (torch.rand(3, 2, 4, 5, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    mask = torch.tensor([[True, True, False, False], [True, True, True, False]])
    expected = np.stack(
        [spikes[:, b, mask[b]].numpy().mean(axis=1) for b in range(2)], axis=1
    )  # (T, B, D): the mean over each image's real tokens only
    np.testing.assert_allclose(pool_spikes(spikes, mask=mask).numpy(), expected, rtol=1e-6)
    changed = spikes.clone()
    changed[:, 0, 2:] = 1.0 - changed[:, 0, 2:]  # padded rows spike otherwise
    loss = spike_contrastive_loss(spikes, mask=mask, temperature=0.2)
    assert spike_contrastive_loss(changed, mask=mask, temperature=0.2) == loss


def test_a_silent_window_sends_no_gradient():
    # image 0 is silent at step 0: its rates there are all zero and have no direction
    rates = torch.tensor([[[0.0, 0.0], [0.5, 0.0]], [[0.25, 0.5], [0.0, 0.5]]]).requires_grad_()
    loss = spike_contrastive_loss(rates, temperature=0.5)
    loss.backward()
    assert torch.isfinite(loss) and rates.grad.abs().max() < 10
    assert torch.equal(rates.grad[0, 0], torch.zeros(2))
    # its similarity to everything is 0: the loss of the other rows is what the formula gives
    root5 = 5**0.5  # (0.25, 0.5) has norm sqrt(5) / 4
    z = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1 / root5, 2 / root5], [0.0, 1.0]])  # t * B + b
    logits = z @ z.T / 0.5
    positives = {0: 2, 1: 3, 2: 0, 3: 1}
    terms = []
    for a, p in positives.items():
        others = torch.cat([logits[a, :a], logits[a, a + 1 :]])
        terms.append(-(logits[a, p] - torch.logsumexp(others, dim=0)))
    assert loss.item() == pytest.approx(torch.stack(terms).mean().item(), rel=1e-5)


def test_the_registered_loss_masks_each_view_with_its_own_mask():
    from types import SimpleNamespace

    from ash_neuro.config import LossConfig
    from ash_neuro.losses.spike_contrastive import SpikeContrastive

    generator = torch.Generator().manual_seed(3)
    spikes = (torch.rand(2, 3, 4, 6, generator=generator) < 0.5).float()
    other = (torch.rand(2, 3, 4, 6, generator=generator) < 0.5).float()
    mask = torch.tensor([[True, True, True, False], [True, False, False, False], [True] * 4])
    other_mask = torch.tensor([[True, True, False, False], [True, True, False, False], [True] * 4])

    def view(s, m):
        return SimpleNamespace(spikes=s, features=SimpleNamespace(mask=m))

    forward = SimpleNamespace(
        visual=view(spikes, mask), second_view=view(other, other_mask), image_ids=None
    )
    cfg = LossConfig(hard_negatives=0)
    got = SpikeContrastive(cfg)(forward)
    expected = spike_contrastive_loss(
        spikes, other, cfg.temperature, mask=mask, other_mask=other_mask
    )
    assert got == expected
    assert got != spike_contrastive_loss(spikes, other, cfg.temperature, mask=mask)
