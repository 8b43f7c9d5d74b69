"""The second view for the spike contrastive loss."""

from __future__ import annotations

import torch

from ash_neuro.models.augment import augment_pair, augment_view


def test_view_keeps_shape_and_range_and_differs():
    torch.manual_seed(0)
    image = torch.rand(4, 3, 16, 16)
    view = augment_view(image)
    assert view.shape == image.shape and view.min() >= 0 and view.max() <= 1
    assert not torch.allclose(view, image, atol=1e-2)


def test_no_crop_and_no_jitter_is_the_identity():
    image = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(augment_view(image, min_scale=1.0, jitter=0.0), image)


def test_no_horizontal_flip_left_stays_left():
    """Captions say left/right: an object on the left must stay on the left in every view."""
    image = torch.zeros(64, 3, 16, 16)
    image[:, :, 6:10, 1:5] = 1.0  # a white square on the left
    torch.manual_seed(0)
    view = augment_view(image, jitter=0.0)
    brightness = view.mean(dim=(1, 2))
    assert (brightness[:, :8].sum(1) > brightness[:, 8:].sum(1)).all()


def test_view_is_differentiable():
    image = torch.rand(2, 3, 16, 16, requires_grad=True)
    augment_view(image).sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


def test_the_instance_map_takes_the_same_crop_as_the_image():
    # channel 0 encodes the column and channel 1 the row; the map holds the same as ids
    size = 16
    cols = torch.arange(size).view(1, size).expand(size, size)
    rows = cols.T
    image = torch.stack([cols / size, rows / size, torch.zeros(size, size)])[None].repeat(
        4, 1, 1, 1
    )
    ids = (rows * size + cols)[None].repeat(4, 1, 1)
    torch.manual_seed(0)
    view, cropped = augment_pair(image, ids, jitter=0.0)
    torch.manual_seed(0)
    assert torch.equal(augment_view(image, jitter=0.0), view)  # the same draws as without a map
    assert cropped.dtype == ids.dtype and not torch.equal(cropped, ids)
    # nearest-neighbour ids lie within half a pixel of the bilinear colours
    col, row = cropped % size, cropped // size
    assert (col - view[:, 0] * size).abs().max() <= 0.5 + 1e-4
    assert (row - view[:, 1] * size).abs().max() <= 0.5 + 1e-4
