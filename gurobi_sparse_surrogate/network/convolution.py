"""Convolutions, pooling and batch normalization as sparse matrices on flattened tensors.

A tensor of shape ``(C, H, W)`` is flattened in torch's order (``c * H * W + h * W + w``).
Every builder here is index arithmetic over *output positions x kernel offsets*: one numpy
array of shape ``(C_out, H_out, W_out, C_in/groups, kH, kW)`` holds every (output, input)
pair a convolution reads, and the sparse matrix is assembled from it in one call. No Python
loop runs over pixels or channels.

* :func:`conv2d_matrix`: ``Conv2d`` (stride, padding with any of torch's padding modes,
  dilation, groups) as an ``(C_out H_out W_out, C_in H W)`` matrix;
* :func:`avg_pool2d_matrix`: ``AvgPool2d`` (padding, ``ceil_mode``, ``count_include_pad``,
  ``divisor_override``) as a matrix;
* :func:`max_pool2d_windows`: the input indices of every ``MaxPool2d`` window (padding and
  ``ceil_mode`` included), the data of the max-pool formulation;
* :func:`batch_norm_affine`: an evaluation-mode ``BatchNorm1d``/``BatchNorm2d`` as a per
  element scale and shift.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

__all__ = [
    "avg_pool2d_matrix",
    "batch_norm_affine",
    "conv2d_matrix",
    "max_pool2d_windows",
    "pair",
]


def pair(value) -> tuple[int, int]:
    """``(v, v)`` for an int, the tuple itself for a pair."""
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def _pool_output_size(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil: bool):
    """Output length of a pooling window sweep, as torch computes it."""
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + pad:
        out -= 1
    return max(out, 0)


def _padding_index(index: np.ndarray, size: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Map padded positions to input positions; return ``(index, valid)``."""
    if mode == "zeros":
        valid = (index >= 0) & (index < size)
        return np.where(valid, index, 0), valid
    if mode == "reflect":
        index = np.where(index < 0, -index, index)
        index = np.where(index >= size, 2 * (size - 1) - index, index)
    elif mode == "replicate":
        index = np.clip(index, 0, size - 1)
    elif mode == "circular":
        index = np.mod(index, size)
    else:  # pragma: no cover - validated by the caller
        raise ValueError(mode)
    return index, np.ones(index.shape, dtype=bool)


def conv2d_matrix(
    weight: np.ndarray,
    input_shape: tuple[int, int, int],
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> tuple[sp.csr_array, tuple[int, int, int]]:
    """The sparse matrix of a 2-D convolution on a flattened ``(C, H, W)`` input.

    Parameters
    ----------
    weight : numpy.ndarray
        ``(C_out, C_in / groups, kH, kW)`` kernel (zero entries are not stored).
    input_shape : tuple of int
        ``(C_in, H, W)``.
    stride, dilation : int or pair of int
    padding : int, pair of int, "valid" or "same"
        As ``torch.nn.Conv2d`` takes it.
    groups : int
    padding_mode : {"zeros", "reflect", "replicate", "circular"}

    Returns
    -------
    matrix : scipy.sparse.csr_array
        ``(C_out * H_out * W_out, C_in * H * W)``.
    output_shape : tuple of int
        ``(C_out, H_out, W_out)``.

    Examples
    --------
    >>> m, shape = conv2d_matrix(np.ones((1, 1, 2, 2)), (1, 3, 3))
    >>> shape, m.toarray()[0].tolist()
    ((1, 2, 2), [1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    """
    c_out, c_in_group, kh, kw = weight.shape
    c_in, h, w = input_shape
    sh, sw = pair(stride)
    dh, dw = pair(dilation)
    if padding == "valid":
        pad_h = pad_w = (0, 0)
    elif padding == "same":
        total_h, total_w = dh * (kh - 1), dw * (kw - 1)
        pad_h = (total_h // 2, total_h - total_h // 2)
        pad_w = (total_w // 2, total_w - total_w // 2)
    else:
        ph, pw = pair(padding)
        pad_h, pad_w = (ph, ph), (pw, pw)
    h_out = (h + sum(pad_h) - dh * (kh - 1) - 1) // sh + 1
    w_out = (w + sum(pad_w) - dw * (kw - 1) - 1) // sw + 1
    if h_out <= 0 or w_out <= 0:
        raise ValueError(f"the kernel does not fit the (padded) input of shape {input_shape}")
    out_group = c_out // groups
    co = np.arange(c_out)[:, None, None, None, None, None]
    oh = np.arange(h_out)[None, :, None, None, None, None]
    ow = np.arange(w_out)[None, None, :, None, None, None]
    ci_local = np.arange(c_in_group)[None, None, None, :, None, None]
    ki = np.arange(kh)[None, None, None, None, :, None]
    kj = np.arange(kw)[None, None, None, None, None, :]
    shape = (c_out, h_out, w_out, c_in_group, kh, kw)
    ci = (co // out_group) * c_in_group + ci_local
    ih, valid_h = _padding_index(oh * sh - pad_h[0] + ki * dh, h, padding_mode)
    iw, valid_w = _padding_index(ow * sw - pad_w[0] + kj * dw, w, padding_mode)
    values = np.broadcast_to(weight[:, None, None], shape)
    keep = np.broadcast_to(valid_h & valid_w, shape) & (values != 0)
    rows = np.broadcast_to((co * h_out + oh) * w_out + ow, shape)[keep]
    cols = np.broadcast_to((ci * h + ih) * w + iw, shape)[keep]
    matrix = sp.coo_array(
        (values[keep].astype(np.float64), (rows, cols)), shape=(c_out * h_out * w_out, c_in * h * w)
    ).tocsr()  # duplicates (reflected or wrapped padding) are summed
    matrix.eliminate_zeros()
    return sp.csr_array(matrix), (c_out, h_out, w_out)


def _window_positions(size, kernel, stride, pad, dilation, ceil):
    """Per output position: the input indices of each window offset, before clipping."""
    out = _pool_output_size(size, kernel, stride, pad, dilation, ceil)
    start = np.arange(out) * stride - pad
    return out, start, start[:, None] + np.arange(kernel)[None, :] * dilation


def avg_pool2d_matrix(
    input_shape: tuple[int, int, int],
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> tuple[sp.csr_array, tuple[int, int, int]]:
    """The sparse matrix of ``torch.nn.AvgPool2d`` on a flattened ``(C, H, W)`` input.

    The divisor of each window follows torch: the window clipped to the padded input
    (``count_include_pad=True``), or to the input itself, or ``divisor_override``.

    Examples
    --------
    >>> m, shape = avg_pool2d_matrix((1, 2, 2), 2)
    >>> shape, m.toarray().tolist()
    ((1, 1, 1), [[0.25, 0.25, 0.25, 0.25]])
    """
    c, h, w = input_shape
    kh, kw = pair(kernel_size)
    sh, sw = pair(kernel_size if stride is None else stride)
    ph, pw = pair(padding)
    h_out, start_h, ih = _window_positions(h, kh, sh, ph, 1, ceil_mode)
    w_out, start_w, iw = _window_positions(w, kw, sw, pw, 1, ceil_mode)
    if h_out <= 0 or w_out <= 0:
        raise ValueError(f"the pooling window does not fit the input of shape {input_shape}")
    # Divisors per output position (torch: window clipped to the padded input first).
    end_h = np.minimum(start_h + kh, h + ph)
    end_w = np.minimum(start_w + kw, w + pw)
    padded = (end_h - start_h)[:, None] * (end_w - start_w)[None, :]
    inside = (np.minimum(end_h, h) - np.maximum(start_h, 0))[:, None] * (
        np.minimum(end_w, w) - np.maximum(start_w, 0)
    )[None, :]
    if divisor_override:
        divisor = np.full((h_out, w_out), float(divisor_override))
    else:
        divisor = (padded if count_include_pad else inside).astype(np.float64)
    ch = np.arange(c)[:, None, None, None, None]
    oh = np.arange(h_out)[None, :, None, None, None]
    ow = np.arange(w_out)[None, None, :, None, None]
    rows_h = ih[None, :, None, :, None]
    rows_w = iw[None, None, :, None, :]
    shape = (c, h_out, w_out, kh, kw)
    keep = np.broadcast_to((rows_h >= 0) & (rows_h < h) & (rows_w >= 0) & (rows_w < w), shape)
    rows = np.broadcast_to((ch * h_out + oh) * w_out + ow, shape)[keep]
    cols = np.broadcast_to((ch * h + rows_h) * w + rows_w, shape)[keep]
    values = np.broadcast_to(1.0 / divisor[None, :, :, None, None], shape)[keep]
    matrix = sp.coo_array((values, (rows, cols)), shape=(c * h_out * w_out, c * h * w)).tocsr()
    return sp.csr_array(matrix), (c, h_out, w_out)


def max_pool2d_windows(
    input_shape: tuple[int, int, int],
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Input indices of every ``torch.nn.MaxPool2d`` window on a flattened ``(C, H, W)`` input.

    Returns
    -------
    windows : numpy.ndarray
        ``(C H_out W_out, kH kW)`` int array of flat input indices, ``-1`` where the window
        covers padding (torch pads with ``-inf``, so those entries never win).
    output_shape : tuple of int

    Examples
    --------
    >>> windows, shape = max_pool2d_windows((1, 3, 3), 2, stride=1)
    >>> shape, windows[0].tolist()
    ((1, 2, 2), [0, 1, 3, 4])
    """
    c, h, w = input_shape
    kh, kw = pair(kernel_size)
    sh, sw = pair(kernel_size if stride is None else stride)
    ph, pw = pair(padding)
    dh, dw = pair(dilation)
    h_out, _, ih = _window_positions(h, kh, sh, ph, dh, ceil_mode)
    w_out, _, iw = _window_positions(w, kw, sw, pw, dw, ceil_mode)
    if h_out <= 0 or w_out <= 0:
        raise ValueError(f"the pooling window does not fit the input of shape {input_shape}")
    ch = np.arange(c)[:, None, None, None, None]
    rows_h = ih[None, :, None, :, None]
    rows_w = iw[None, None, :, None, :]
    shape = (c, h_out, w_out, kh, kw)
    valid = np.broadcast_to((rows_h >= 0) & (rows_h < h) & (rows_w >= 0) & (rows_w < w), shape)
    index = np.broadcast_to((ch * h + rows_h) * w + rows_w, shape)
    windows = np.where(valid, index, -1).reshape(c * h_out * w_out, kh * kw)
    return windows, (c, h_out, w_out)


def window_matrix(windows: np.ndarray, n_in: int) -> sp.csr_array:
    """0/1 matrix with a one at ``(r, i)`` for every input ``i`` of window ``r``."""
    rows = np.broadcast_to(np.arange(windows.shape[0])[:, None], windows.shape)
    keep = windows >= 0
    matrix = sp.coo_array(
        (np.ones(int(keep.sum())), (rows[keep], windows[keep])), shape=(windows.shape[0], n_in)
    ).tocsr()
    matrix.data[:] = 1.0  # a window never lists an input twice, but stay 0/1 regardless
    return sp.csr_array(matrix)


def batch_norm_affine(
    shape: tuple[int, ...],
    mean: np.ndarray,
    var: np.ndarray,
    eps: float,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-element ``scale`` and ``shift`` of an evaluation-mode batch normalization.

    ``shape`` is the per-sample shape ``(C,)``, ``(C, L)`` or ``(C, H, W)``; the statistics
    are per channel (the first axis).

    Examples
    --------
    >>> scale, shift = batch_norm_affine((2, 1), np.ones(2), np.full(2, 4.0), 0.0, None, None)
    >>> scale.tolist(), shift.tolist()
    ([0.5, 0.5], [-0.5, -0.5])
    """
    scale = 1.0 / np.sqrt(var + eps)
    if gamma is not None:
        scale = scale * gamma
    shift = 0.0 - mean * scale  # +0.0, not -0.0, for a zero mean
    if beta is not None:
        shift = shift + beta
    per_channel = math.prod(shape[1:])
    return np.repeat(scale, per_channel), np.repeat(shift, per_channel)
