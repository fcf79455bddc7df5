"""Input corruptions for denoising autoencoders: Gaussian, masking and salt-and-pepper noise, seeded.

Every function takes x: (N, 784) in [0, 1] and draws its noise on x's device from a generator seeded
with `seed` (an int in [0, 2**64 - 1]), so the same seed gives the same corruption.
"""
from __future__ import annotations

import torch
from torch import Tensor

from funml_lib._validate import check_fraction, check_images, check_in_unit_interval, check_nonnegative
from funml_lib._validate import check_bool, check_seed


def _generator(x: Tensor, seed: int) -> torch.Generator:
    # a generator on x's device: noise is drawn where the data lives, reproducibly per seed
    return torch.Generator(device=x.device).manual_seed(check_seed("seed", seed))


def corrupt_gaussian(x: Tensor, sigma: float, seed: int = 0, clip: bool = True) -> Tensor:
    """Add Gaussian pixel noise: x_tilde = x + sigma * eps, eps ~ N(0, I).

    x: (N, 784) in [0, 1]; returns x_tilde (N, 784), clipped to [0, 1] when `clip` (so it is still an image).
    """
    check_in_unit_interval("x", check_images("x", x))
    sigma = check_nonnegative("sigma", sigma)
    clip = check_bool("clip", clip)  # clip="no" or 0 would silently pick the opposite of what was meant
    eps = torch.randn(x.shape, generator=_generator(x, seed), device=x.device, dtype=x.dtype)
    x_tilde = x + sigma * eps
    return x_tilde.clamp_(0.0, 1.0) if clip else x_tilde


def corrupt_mask(x: Tensor, fraction: float, seed: int = 0) -> Tensor:
    """Masking noise: set each pixel to 0 independently with probability `fraction`.

    x: (N, 784) in [0, 1]; returns x_tilde (N, 784) = x * m, m_ij ~ Bernoulli(1 - fraction).
    """
    check_in_unit_interval("x", check_images("x", x))
    fraction = check_fraction("fraction", fraction)
    u = torch.rand(x.shape, generator=_generator(x, seed), device=x.device)
    return x * (u >= fraction).to(x.dtype)  # u in [0, 1): fraction=0 keeps all, fraction=1 drops all


def corrupt_salt_pepper(x: Tensor, fraction: float, seed: int = 0) -> Tensor:
    """Salt-and-pepper noise: each pixel, with probability `fraction`, becomes 0 or 1 (equally likely).

    x: (N, 784) in [0, 1]; returns x_tilde (N, 784).
    """
    check_in_unit_interval("x", check_images("x", x))
    fraction = check_fraction("fraction", fraction)
    g = _generator(x, seed)
    hit = torch.rand(x.shape, generator=g, device=x.device) < fraction
    salt = (torch.rand(x.shape, generator=g, device=x.device) < 0.5).to(x.dtype)
    return torch.where(hit, salt, x)
