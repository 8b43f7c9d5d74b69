"""NIR's linear nodes as connection matrices over C-order flattened tensors (NIR's (C, H, W)).

`linear_map` gives a node's (matrix, bias, output shape) for an input shape: Affine and Linear
their weights, Scale a diagonal, Conv2d, SumPool2d and AvgPool2d sparse matrices of the
cross-correlation NIR means (PyTorch's, padding counted in the average), rather than Lava `Conv`
processes, whose fixed-point model (lava-nc 0.10) ignores `weight_exp` and which expect
(W, H, C) data; `flatten_shape` is Flatten's shape (the data itself is unchanged). graph.py
multiplies chains of these into one matrix per pair of populations.
"""

from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np
from scipy import sparse

from hardware.plan import HarnessError, Matrix

LINEAR_TYPES = (nir.Affine, nir.Linear, nir.Scale, nir.Conv2d, nir.SumPool2d, nir.AvgPool2d)


def linear_map(name: str, node, shape) -> tuple[Matrix, np.ndarray, tuple[int, ...]]:
    """(matrix, bias, output shape) of a linear node applied to a flattened `shape` input."""
    kind = type(node).__name__
    size = int(np.prod(shape))
    if isinstance(node, nir.Affine | nir.Linear):
        weight = np.asarray(node.weight, dtype=np.float64)
        if weight.ndim != 2 or weight.shape[1] != size:
            raise HarnessError(
                f"node '{name}' ({kind}): weight of shape {weight.shape} cannot take an input "
                f"of shape {shape} ({size} values)"
            )
        bias = np.zeros(weight.shape[0])
        if isinstance(node, nir.Affine):
            bias = np.asarray(node.bias, dtype=np.float64).reshape(-1)
            if bias.shape != (weight.shape[0],):
                raise HarnessError(
                    f"node '{name}' (Affine): bias has {bias.size} values for "
                    f"{weight.shape[0]} outputs"
                )
        return weight, bias, (weight.shape[0],)
    if isinstance(node, nir.Scale):
        scale = np.asarray(node.scale, dtype=np.float64).reshape(-1)
        if scale.size not in (1, size):
            raise HarnessError(
                f"node '{name}' (Scale): scale has {scale.size} values for input {shape}"
            )
        return sparse.diags(np.broadcast_to(scale, (size,))).tocsr(), np.zeros(size), shape
    if len(shape) != 3:
        raise HarnessError(f"node '{name}' ({kind}) needs a (C, H, W) input, got shape {shape}")
    channels = shape[0]
    if isinstance(node, nir.Conv2d):
        weight = np.asarray(node.weight, dtype=np.float64)
        groups = int(node.groups)
        if weight.ndim != 4 or groups < 1 or weight.shape[1] * groups != channels:
            raise HarnessError(
                f"node '{name}' (Conv2d): weight of shape {weight.shape} with {groups} groups "
                f"cannot take an input of shape {shape}"
            )
        if weight.shape[0] % groups:
            raise HarnessError(f"node '{name}' (Conv2d): output channels not divisible by groups")
        bias = np.asarray(node.bias, dtype=np.float64).reshape(-1)
        if bias.size not in (0, weight.shape[0]):
            raise HarnessError(f"node '{name}' (Conv2d): bias has {bias.size} values")
        geometry = _Window.of(name, node, weight.shape[2:], shape)
        if node.input_shape is not None and tuple(np.atleast_1d(node.input_shape)) != shape[1:]:
            raise HarnessError(
                f"node '{name}' (Conv2d): declares input (H, W) = "
                f"{tuple(np.atleast_1d(node.input_shape))} but receives {shape}"
            )
    else:
        kernel = tuple(int(k) for k in np.broadcast_to(node.kernel_size, (2,)))
        groups = channels
        scale = 1.0 / np.prod(kernel) if isinstance(node, nir.AvgPool2d) else 1.0
        weight = np.full((channels, 1, *kernel), scale)
        bias = np.zeros(0)
        geometry = _Window.of(name, node, kernel, shape)
    matrix = geometry.matrix(weight, groups)
    out_shape = (weight.shape[0], *geometry.out_hw)
    bias = np.repeat(bias, np.prod(geometry.out_hw)) if bias.size else np.zeros(matrix.shape[0])
    return matrix, bias, out_shape


@dataclass(frozen=True)
class _Window:
    """Geometry of a 2-d sliding window (convolution or pooling) over a (C, H, W) input."""

    in_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pad_before: tuple[int, int]
    out_hw: tuple[int, int]

    @staticmethod
    def of(name: str, node, kernel, in_shape) -> _Window:
        kernel = tuple(int(k) for k in kernel)
        stride = _pair(node.stride if node.stride is not None else kernel)
        dilation = _pair(getattr(node, "dilation", 1))
        padding = node.padding
        if isinstance(padding, bytes):
            padding = padding.decode()
        span = tuple(d * (k - 1) for d, k in zip(dilation, kernel))
        if isinstance(padding, str) and padding == "same":
            if stride != (1, 1):
                raise HarnessError(f"node '{name}': padding 'same' needs stride 1")
            before = tuple(s // 2 for s in span)
            total = span
        elif isinstance(padding, str):
            before = total = (0, 0)
        else:
            before = _pair(padding)
            total = tuple(2 * p for p in before)
        out_hw = tuple(
            (n + t - s - 1) // st + 1 for n, t, s, st in zip(in_shape[1:], total, span, stride)
        )
        if min(out_hw) < 1 or min(stride) < 1 or min(dilation) < 1:
            raise HarnessError(
                f"node '{name}' ({type(node).__name__}): a {kernel} window with stride "
                f"{stride} and padding {padding} does not fit an input of shape {in_shape}"
            )
        return _Window(in_shape, kernel, stride, dilation, before, out_hw)

    def matrix(self, weight: np.ndarray, groups: int) -> sparse.csr_matrix:
        """Sparse (C_out*H_out*W_out, C*H*W) matrix of the cross-correlation NIR means."""
        channels, height, width = self.in_shape
        out_channels, group_in = weight.shape[:2]
        out_h, out_w = self.out_hw
        o, oy, ox = np.meshgrid(
            np.arange(out_channels), np.arange(out_h), np.arange(out_w), indexing="ij"
        )
        rows = (o * out_h + oy) * out_w + ox
        group = o // (out_channels // groups)
        row_ids, col_ids, values = [], [], []
        for c in range(group_in):
            for ky in range(self.kernel[0]):
                for kx in range(self.kernel[1]):
                    iy = oy * self.stride[0] - self.pad_before[0] + ky * self.dilation[0]
                    ix = ox * self.stride[1] - self.pad_before[1] + kx * self.dilation[1]
                    inside = (iy >= 0) & (iy < height) & (ix >= 0) & (ix < width)
                    channel = group * group_in + c
                    row_ids.append(rows[inside])
                    col_ids.append(((channel * height + iy) * width + ix)[inside])
                    values.append(weight[o[inside], c, ky, kx])
        shape = (out_channels * out_h * out_w, channels * height * width)
        return sparse.csr_matrix(
            (np.concatenate(values), (np.concatenate(row_ids), np.concatenate(col_ids))),
            shape=shape,
        )


def flatten_shape(name: str, node: nir.Flatten, shape) -> tuple[int, ...]:
    """NIR's Flatten over the (batch-free) shape; the C-order data itself is unchanged."""
    ndim = len(shape)
    start = int(node.start_dim) % ndim if ndim else 0
    end = int(node.end_dim) % ndim if ndim else 0
    if start > end:
        raise HarnessError(f"node '{name}' (Flatten): start_dim {start} is after end_dim {end}")
    return (*shape[:start], int(np.prod(shape[start : end + 1])), *shape[end + 1 :])


def scale_rows(gain: np.ndarray, matrix: Matrix) -> Matrix:
    if sparse.issparse(matrix):
        return sparse.diags(gain) @ matrix
    return gain[:, None] * matrix


def as_matrix(matrix) -> Matrix:
    return matrix.tocsr() if sparse.issparse(matrix) else np.asarray(matrix)


def identity(size: int) -> sparse.csr_matrix:
    return sparse.identity(size, format="csr")


def _pair(value) -> tuple[int, int]:
    return tuple(int(v) for v in np.broadcast_to(np.asarray(value).reshape(-1), (2,)))
