"""Reference values of chapter 3's numeric answers (read by the grader).

Every value is a closed form or a hand computation from the exercise's
statement, never a number that depends on a training run.
"""
import math


def _normal_pdf(t: float) -> float:
    return math.exp(-t * t / 2) / math.sqrt(2 * math.pi)


def _normal_cdf(t: float) -> float:
    return 0.5 * (1 + math.erf(t / math.sqrt(2)))


def _clipped_noise_mean(sigma: float) -> float:
    """E[clip(sigma * eps, 0, 1)] for eps ~ N(0, 1): a black pixel's mean."""
    top = 1 / sigma
    return (sigma * (_normal_pdf(0) - _normal_pdf(top))
            + (1 - _normal_cdf(top)))


# tests cell grade_id -> {variable: (reference value, absolute tolerance)}
NUMBERS = {
    # Exercise 3.1 (a): the identity and the linear DAE's gains, sigma = 0.5
    "ex-dae-1-tests": {
        "identity_loss": (0.5 ** 2, 1e-4),          # sigma^2 per pixel
        "gain_equal": (0.5, 1e-4),                  # lambda_k = sigma^2
        "gain_var_1": (1 / (1 + 0.5 ** 2), 1e-3),   # lambda_k = 1
        "gain_var_small": (0.01 / (0.01 + 0.5 ** 2), 1e-3),  # 0.01
        "gain_sigma_0": (1.0, 1e-4),                # sigma -> 0
        "gain_sigma_inf": (0.0, 1e-4),              # sigma -> infinity
    },
    # Exercise 3.6: clipped Gaussian noise on a black pixel, sigma = 0.5,
    # and masking noise with p = 0.25
    "ex-dae-6-tests": {
        "share_still_black": (0.5, 1e-3),
        # 0.5 / sqrt(2 pi) = 0.1995 is accepted: the clip at 1 is small
        "clipped_mean": (_clipped_noise_mean(0.5), 5e-3),
        "share_masked": (0.25, 1e-4),
        "mask_mse_factor": (0.25, 1e-4),            # E[(m x - x)^2] / x^2
    },
}
