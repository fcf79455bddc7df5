"""Reference values of chapter 5's numeric answers (read by the grader).

Every value is a closed form from the exercise's statement, never a number
that depends on a training run; the chapter computes each one with torch
next to the student's prediction.
"""
import math


def _nll(log_weights: list[float]) -> float:
    """-log of the mean of exp(log_weights): the importance-sampled -log p."""
    top = max(log_weights)
    mean = sum(math.exp(w - top) for w in log_weights) / len(log_weights)
    return -(top + math.log(mean))


# Exercise "ex-vae-mnist-k" (a): one digit, log-weights of four codes drawn
# from q, in this order.
_LOG_W = [-93.0, -91.0, -90.0, -92.0]

# tests cell grade_id -> {variable: (reference value, absolute tolerance)}
NUMBERS = {
    "ex-vae-mnist-nats-tests": {
        "bce_grey": (math.log(2), 1e-3),            # x = 0.5, x_hat = 0.5
        "bce_sure": (-math.log(0.9), 1e-3),         # x = 1, x_hat = 0.9
        "floor_grey": (784 * math.log(2), 0.05),    # binary entropy, 784 px
        "floor_binary": (0.0, 1e-3),                # 0 log 0 = 0
        # mu = (0.5, -1), sigma^2 = (0.25, 1), against N(0, I)
        "kl_code": (0.5 * (0.25 + 0.25 - 1 - math.log(0.25))
                    + 0.5 * (1 + 1 - 1 - math.log(1.0)), 1e-3),
    },
    "ex-vae-mnist-k-tests": {
        "nll_k1": (_nll(_LOG_W[:1]), 1e-2),
        "nll_k2": (_nll(_LOG_W[:2]), 1e-2),
        "nll_k4": (_nll(_LOG_W), 1e-2),
        "nll_k1_mean": (-sum(_LOG_W) / 4, 1e-2),
        "gap_k4": (-sum(_LOG_W) / 4 - _nll(_LOG_W), 1e-2),
    },
}
