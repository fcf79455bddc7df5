"""Reference values of chapter 0's number answers (read by the grader).

Every reference is a hand computation; none depends on a training run.
"""
import math

# E[max(0, s e)] for e ~ N(0, 1), s = 0.5: s * phi(0) = s / sqrt(2 pi)
_RELU_MEAN = 0.5 / math.sqrt(2 * math.pi)
# the clip at 1 removes E[max(0, s e - 1)] = s phi(1/s) - (1 - Phi(1/s))
_ABOVE_ONE = (0.5 * math.exp(-2) / math.sqrt(2 * math.pi)
              - 0.5 * math.erfc(2 / math.sqrt(2)))

# tests cell grade_id -> {variable: (reference value, absolute tolerance)}
NUMBERS = {
    "ex-data-1-tests": {
        "masked_ratio": (0.5, 0.005),
        "relu_mean": (_RELU_MEAN, 0.0005),         # 0.19947
        "background_mean": (_RELU_MEAN - _ABOVE_ONE, 0.0005),   # 0.19522
    },
}
