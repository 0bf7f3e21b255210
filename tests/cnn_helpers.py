"""Random small CNNs for the convolution tests (drawn with hypothesis, checked by torch)."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import assume
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import prune

from gurobi_sparse_surrogate.network.extraction import clone_network


@st.composite
def conv_specs(draw, max_pool: bool = True, max_size: int = 7):
    """Keyword arguments of :func:`make_cnn`: shapes, kernel, stride, padding, dilation,
    groups, channels, pooling, batch norm, masks."""
    groups = draw(st.sampled_from([1, 2]))
    spec = {
        "seed": draw(st.integers(0, 10_000)),
        "c_in": groups * draw(st.integers(1, 2)),
        "h": draw(st.integers(3, max_size)),
        "w": draw(st.integers(3, max_size)),
        "c_out": groups * draw(st.integers(1, 2)),
        "kernel": (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        "stride": (draw(st.integers(1, 2)), draw(st.integers(1, 2))),
        "padding": draw(st.sampled_from([0, 1, (1, 0), "same"])),
        "padding_mode": draw(
            st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"])
        ),
        "dilation": draw(st.sampled_from([1, 1, 2])),
        "groups": groups,
        "bias": draw(st.booleans()),
        "batch_norm": draw(st.sampled_from([None, "before", "after", "after_relu"])),
        "pool": draw(st.sampled_from(["none", "avg", "max"] if max_pool else ["none", "avg"])),
        "pool_kernel": draw(st.integers(1, 2)),
        "pool_stride": draw(st.integers(1, 2)),
        "pool_padding": draw(st.integers(0, 1)),
        "ceil_mode": draw(st.booleans()),
        "count_include_pad": draw(st.booleans()),
        "second_conv": draw(st.booleans()),
        "density": draw(st.sampled_from([1.0, 0.6])),
        "n_out": draw(st.integers(1, 3)),
    }
    net = make_cnn(**spec)
    assume(net is not None)
    return spec


def _randomize_batch_norm(module: nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        module.running_mean.copy_(torch.rand(module.num_features, generator=gen) - 0.5)
        module.running_var.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
        module.weight.copy_(torch.rand(module.num_features, generator=gen) * 3 - 1.5)
        module.bias.copy_(torch.rand(module.num_features, generator=gen) - 0.5)


def make_cnn(
    seed=0,
    c_in=1,
    h=5,
    w=5,
    c_out=2,
    kernel=(3, 3),
    stride=(1, 1),
    padding=0,
    padding_mode="zeros",
    dilation=1,
    groups=1,
    bias=True,
    batch_norm=None,
    pool="none",
    pool_kernel=2,
    pool_stride=2,
    pool_padding=0,
    ceil_mode=False,
    count_include_pad=True,
    second_conv=False,
    density=1.0,
    n_out=2,
) -> nn.Sequential | None:
    """A seeded CNN reading flat inputs, or None when torch rejects the combination."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    try:
        conv = nn.Conv2d(
            c_in,
            c_out,
            kernel,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
            padding_mode=padding_mode,
        )
    except ValueError:
        return None
    modules: list[nn.Module] = [nn.Unflatten(1, (c_in, h, w))]
    if batch_norm == "before":
        modules.append(nn.BatchNorm2d(c_in))
    modules.append(conv)
    if batch_norm == "after":
        modules.append(nn.BatchNorm2d(c_out))
    modules.append(nn.ReLU())
    if batch_norm == "after_relu":
        modules.append(nn.BatchNorm2d(c_out))
    pad = min(pool_padding, pool_kernel // 2)
    if pool == "avg":
        modules.append(
            nn.AvgPool2d(
                pool_kernel,
                pool_stride,
                pad,
                ceil_mode=ceil_mode,
                count_include_pad=count_include_pad,
            )
        )
    elif pool == "max":
        modules.append(nn.MaxPool2d(pool_kernel, pool_stride, pad, ceil_mode=ceil_mode))
    if second_conv:
        modules += [nn.Conv2d(c_out, 2, 2, padding=1), nn.ReLU()]
    modules.append(nn.Flatten())
    body = nn.Sequential(*modules).eval()
    try:
        with torch.no_grad():
            n_flat = body(torch.zeros(1, c_in * h * w)).shape[1]
    except RuntimeError:
        return None
    if n_flat == 0 or n_flat > 200:
        return None
    net = nn.Sequential(*modules, nn.Linear(n_flat, n_out))
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            _randomize_batch_norm(module, gen)
        if isinstance(module, nn.Conv2d) and density < 1.0:
            keep = rng.random(module.weight.shape) < density
            prune.custom_from_mask(module, "weight", torch.from_numpy(keep))
    return net.eval()


def unrolled_linear(network: nn.Sequential, n_in: int) -> nn.Sequential:
    """The same network as Linear and ReLU modules, each affine block's matrix read off
    torch's own forward pass on the unit vectors (independent of this package's index
    arithmetic). MaxPool2d is not linear and is refused."""
    net = network
    blocks: list[tuple[tuple[int, ...], list[nn.Module]]] = []
    x = torch.zeros(1, n_in)
    current: list[nn.Module] = []
    start_shape = tuple(x.shape[1:])
    with torch.no_grad():
        for module in net:
            if isinstance(module, nn.MaxPool2d):
                raise ValueError("max pooling cannot be unrolled into Linear layers")
            if isinstance(module, nn.ReLU):
                blocks.append((start_shape, current))
                current = []
                x = module(x)
                start_shape = tuple(x.shape[1:])
                continue
            current.append(module)
            x = module(x)
    blocks.append((start_shape, current))
    modules: list[nn.Module] = []
    for i, (shape, block) in enumerate(blocks):
        size = int(np.prod(shape))
        part = nn.Sequential(nn.Unflatten(1, shape), *block, nn.Flatten())
        part = clone_network(part).double().eval()
        with torch.no_grad():
            zero = part(torch.zeros(1, size, dtype=torch.float64))
            columns = part(torch.eye(size, dtype=torch.float64)) - zero
        linear = nn.Linear(size, columns.shape[1]).double()
        with torch.no_grad():
            linear.weight.copy_(columns.T)
            linear.bias.copy_(zero.reshape(-1))
        modules.append(linear)
        if i < len(blocks) - 1:
            modules.append(nn.ReLU())
    return nn.Sequential(*modules).eval()
