"""The homework self-checks accept the library's reference and reject typical wrong answers."""
import pytest
import torch

from funml_lib import losses
from funml_lib import self_checks as checks
from funml_lib.corruptions import corrupt_mask
from funml_lib.self_checks import CheckFailed

EPS = 1e-6


def kl_ref(rho, rho_hat):
    return losses.kl_sparsity(rho, rho_hat)


def kl_student(rho, rho_hat):
    # a correct answer written differently from the library (own clamp, plain logs)
    q = rho_hat.clamp(1e-7, 1 - 1e-7)
    return rho * torch.log(rho / q) + (1 - rho) * torch.log((1 - rho) / (1 - q))


def kl_flipped(rho, rho_hat):
    return -kl_student(rho, rho_hat)


def kl_swapped(rho, rho_hat):
    q = rho_hat.clamp(1e-6, 1 - 1e-6)
    return q * torch.log(q / rho) + (1 - q) * torch.log((1 - q) / (1 - rho))


def kl_one_term(rho, rho_hat):
    return rho * torch.log(rho / rho_hat.clamp(1e-6, 1))


def kl_summed(rho, rho_hat):
    return kl_student(rho, rho_hat).sum()


def kl_unclamped(rho, rho_hat):
    return rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))


def kl_via_numpy(rho, rho_hat):
    import numpy as np
    q = np.clip(rho_hat.detach().numpy(), 1e-6, 1 - 1e-6)
    return torch.from_numpy(rho * np.log(rho / q) + (1 - rho) * np.log((1 - rho) / (1 - q)))


def kl_fixed_rho(rho, rho_hat):
    return kl_student(0.05, rho_hat)


def test_kl_accepts_reference_and_own_version(capsys):
    checks.check_kl_sparsity(kl_ref)
    checks.check_kl_sparsity(kl_student)
    assert capsys.readouterr().out.count("all 7 checks passed") == 2


@pytest.mark.parametrize("wrong, message", [
    (kl_flipped, "never negative"),
    (kl_swapped, r"KL\(rho_hat \|\| rho\)"),
    (kl_one_term, r"\(1 - rho\)"),
    (kl_summed, "sum over units"),
    (kl_unclamped, "clamp rho_hat"),
    (kl_via_numpy, "no gradient flows"),
    (kl_fixed_rho, "must be 0 when rho_hat equals rho"),
])
def test_kl_rejects_typical_mistakes(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_kl_sparsity(wrong)


def test_kl_message_never_contains_solution_code():
    with pytest.raises(CheckFailed) as err:
        checks.check_kl_sparsity(kl_one_term)
    assert "torch.log" not in str(err.value) and "clamp(" not in str(err.value)


def test_stub_passes_through_and_bad_argument_is_a_type_error():
    def stub(rho, rho_hat):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError):
        checks.check_kl_sparsity(stub)
    with pytest.raises(TypeError, match="fn must be your function"):
        checks.check_kl_sparsity(0.05)


def test_crash_in_student_code_is_reported_with_inputs():
    def crashes(rho, rho_hat):
        return rho_hat @ torch.ones(3)

    with pytest.raises(CheckFailed, match=r"raised RuntimeError .* rho_hat of shape \(8,\)"):
        checks.check_kl_sparsity(crashes)


# ------------------------------------------------------------------------------------ Gaussian KL
def test_gaussian_kl_accepts(capsys):
    checks.check_gaussian_kl(losses.gaussian_kl)
    checks.check_gaussian_kl(lambda mu, lv: -0.5 * torch.sum(1 + lv - mu.pow(2) - lv.exp(), dim=1))
    assert capsys.readouterr().out.count("all 5 checks passed") == 2


@pytest.mark.parametrize("wrong, message", [
    (lambda mu, lv: (mu.pow(2) + lv.exp() - 1 - lv).sum(1), "factor 1/2 is missing"),
    (lambda mu, lv: 0.5 * torch.sum(1 + lv - mu.pow(2) - lv.exp(), dim=1), "never negative"),
    (lambda mu, lv: 0.5 * (mu.pow(2) + lv.exp() - 1 - lv).mean(1), "3 times too small"),
    (lambda mu, lv: 0.5 * (mu.pow(2) + (lv / 2).exp() - 1 - lv).sum(1), "variance 4"),
    (lambda mu, lv: 0.5 * (mu.pow(2) + lv.exp() - 1 - lv).sum(), "single number"),
])
def test_gaussian_kl_rejects(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_gaussian_kl(wrong)


# -------------------------------------------------------------------------------- reparameterize
def reparam_good(mu, logvar):
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def test_reparameterize_accepts_and_keeps_global_rng(capsys):
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    checks.check_reparameterize(reparam_good)
    checks.check_reparameterize(lambda mu, lv: torch.normal(0.0, 1.0, size=mu.shape) * (lv / 2).exp() + mu)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert capsys.readouterr().out.count("all 6 checks passed") == 2


def fixed_seed(mu, logvar):
    torch.manual_seed(0)
    return reparam_good(mu, logvar)


@pytest.mark.parametrize("wrong, message", [
    (lambda mu, lv: mu + lv.exp() * torch.randn_like(mu), "variance exp"),
    (lambda mu, lv: mu + lv * torch.randn_like(mu), "follows logvar itself"),
    (lambda mu, lv: 0.5 * lv.exp() * torch.randn_like(mu) + mu, "expected per-dimension"),
    (lambda mu, lv: torch.exp(0.5 * lv) * torch.randn_like(mu), "centred at 0"),
    (lambda mu, lv: mu, "no noise"),
    (lambda mu, lv: mu + torch.exp(0.5 * lv) * torch.randn(mu.shape[1]), "same noise"),
    (fixed_seed, "two calls"),
    (lambda mu, lv: (mu + torch.exp(0.5 * lv) * torch.randn_like(mu)).detach(), "no gradient"),
    (lambda mu, lv: torch.normal(mu, torch.exp(0.5 * lv)), "gradient"),
])
def test_reparameterize_rejects(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_reparameterize(wrong)


# ----------------------------------------------------------------------------------- corruption
def test_corruptions_accept_library_and_own_versions(capsys):
    checks.check_corrupt_mask(corrupt_mask)
    checks.check_corrupt_mask(lambda x, f: x * (torch.rand_like(x) >= f).float())
    out = capsys.readouterr().out
    assert out.count("all 5 checks passed") == 2


@pytest.mark.parametrize("wrong, message", [
    (lambda x, f: x * (torch.rand_like(x) < f).float(), "not to keep"),
    (lambda x, f: x * torch.rand_like(x) * (torch.rand_like(x) >= f).float(), "keep their value"),
    (lambda x, f: x.mul_((torch.rand_like(x) >= f).float()), "in place"),
    (lambda x, f: x * (torch.rand_like(x) >= f / 2).float(), "about 30%"),
])
def test_corrupt_mask_rejects(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_corrupt_mask(wrong)


# ------------------------------------------------------------------------------------ check_numbers
def test_check_numbers_prints_the_values_back(capsys):
    import numpy as np

    checks.check_numbers(kl_value=0.5, rank=10, t=torch.tensor(2.25), n=np.float64(-1.5))
    assert capsys.readouterr().out == ("check_numbers: kl_value = 0.5, rank = 10, t = 2.25, n = -1.5 "
                                       "(the course grader decides whether they are right)\n")


@pytest.mark.parametrize("value, message", [
    (True, "check_numbers: kl_value must be a number, got a boolean (True)"),
    ("0.5", "check_numbers: kl_value must be a number, got str ('0.5')"),
    (float("nan"), "check_numbers: kl_value must be a finite number, got nan"),
    (float("inf"), "check_numbers: kl_value must be a finite number, got inf"),
    (None, "check_numbers: kl_value must be a number, got NoneType (None)"),
    (1j, "check_numbers: kl_value must be a number, got complex (1j)"),
])
def test_check_numbers_names_the_bad_variable(value, message):
    with pytest.raises(CheckFailed) as err:
        checks.check_numbers(kl_value=value)
    assert str(err.value) == message


def test_check_numbers_needs_keywords():
    with pytest.raises(TypeError, match="check_numbers needs your answers as keywords"):
        checks.check_numbers()
