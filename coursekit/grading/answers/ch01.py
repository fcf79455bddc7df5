"""Reference values of chapter 1's number answers (read by the grader).

Every reference is a hand count for the chapter's default sizes; none depends on a training run.
"""


def _linear(n_in: int, n_out: int) -> int:
    """Weights and biases of one nn.Linear(n_in, n_out)."""
    return n_in * n_out + n_out


# tests cell grade_id -> {variable: (reference value, absolute tolerance)}
NUMBERS = {
    "ex-reg-1-tests": {
        # 784-1000-784, no hidden layer: 1,569,784
        "wide_params": (_linear(784, 1000) + _linear(1000, 784), 0),
        # 784-256-10-256-784: 407,834
        "narrow_params": (_linear(784, 256) + _linear(256, 10)
                          + _linear(10, 256) + _linear(256, 784), 0),
        # M = W_dec W_enc is 784 x 784; a 1000-d code does not lower the bound
        "max_rank": (784, 0),
    },
    "ex-reg-2-tests": {
        # W_enc has 10 rows, so M = W_dec W_enc has rank at most 10
        "nonzero_singular_values": (10, 0),
        # 784-10-784, no hidden layer: 16,474
        "linear_params": (_linear(784, 10) + _linear(10, 784), 0),
    },
}
