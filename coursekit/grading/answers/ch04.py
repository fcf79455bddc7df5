"""Reference values of chapter 4's numeric answers (read by the grader).

Every value is a closed form from the exercise's statement, never a number
that depends on a training run; the chapter measures each one next to the
student's prediction.
"""
import math

# Exercise "ex-vae-baseline": f(z) = z^2, z = mu + sigma * eps, mu = 1,
# sigma = 0.1; per-sample variance of the estimate of d/dmu E[f].
_MU, _SIGMA = 1.0, 0.1

# Exercise "ex-vae-meanfield" (c): posterior covariance S = [[2, 0.6],
# [0.6, 0.5]]; the best diagonal variances are 1 / Lambda_jj = S_jj (1 - r^2).
_R2 = 0.6**2 / (2.0 * 0.5)

# tests cell grade_id -> {variable: (reference value, absolute tolerance)}
NUMBERS = {
    "ex-vae-baseline-tests": {
        # score function: (mu^4 + 18 mu^2 s^2 + 15 s^4) / s^2 - 4 mu^2
        "var_score": ((_MU**4 + 18 * _MU**2 * _SIGMA**2 + 15 * _SIGMA**4)
                      / _SIGMA**2 - 4 * _MU**2, 0.05),
        # with the baseline c = mu^2 + sigma^2: 8 mu^2 + 10 sigma^2
        "var_baseline": (8 * _MU**2 + 10 * _SIGMA**2, 0.01),
        # reparameterized: 2z has variance 4 sigma^2
        "var_reparam": (4 * _SIGMA**2, 1e-3),
    },
    "ex-vae-meanfield-tests": {
        "inv_lambda_11": (2.0 * (1 - _R2), 1e-3),
        "inv_lambda_22": (0.5 * (1 - _R2), 1e-3),
    },
}
