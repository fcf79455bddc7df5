"""Reference values of chapter 2's numeric answers (read by the grader).

Every value is a closed form or a hand computation from the exercise's
statement, never a number that depends on a training run.
"""
import math


def _bernoulli_kl(rho: float, rho_hat: float) -> float:
    """KL(rho || rho_hat) of two Bernoulli distributions, in nats."""
    return (rho * math.log(rho / rho_hat)
            + (1 - rho) * math.log((1 - rho) / (1 - rho_hat)))


# tests cell grade_id -> {variable: (reference value, absolute tolerance)}
NUMBERS = {
    # Exercise 2.1: two units with the same mean activation 0.05 = rho, and
    # a unit at rho_hat = 0.001 under KL (lambda 0.003) and L1 (0.005).
    "ex-sparse-1-tests": {
        "kl_spiky": (0.0, 1e-4),
        "kl_constant": (0.0, 1e-4),
        "l1_spiky": (0.05, 1e-4),
        "l1_constant": (0.05, 1e-4),
        # 0.003 * KL(0.05 || 0.001); the table's rounded 0.148 passes
        "kl_charge": (0.003 * _bernoulli_kl(0.05, 0.001), 2e-6),
        "l1_charge": (0.005 * 0.001, 5e-7),
        # push on the bias, about lambda (rho_hat - rho) and lambda rho_hat
        "kl_push": (0.003 * (0.001 - 0.05), 1.5e-5),
        "l1_push": (0.005 * 0.001, 5e-7),
    },
    # Exercise 2.5: the KL curve and the sigmoid factor in numbers.
    "ex-sparse-5-tests": {
        "kl_at_0_2": (_bernoulli_kl(0.05, 0.2), 1e-3),
        # dKL/drho_hat = (1 - rho) / (1 - rho_hat) - rho / rho_hat
        "slope_at_0_2": (0.95 / 0.8 - 0.05 / 0.2, 1e-3),
        # z (1 - z), the rate at which z responds to its pre-activation
        "factor_on": (0.5 * 0.5, 1e-4),
        "factor_off": (0.01 * 0.99, 1e-4),
    },
}
