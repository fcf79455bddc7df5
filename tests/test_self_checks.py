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


# ------------------------------------------------------------------------- check_own_work (hidden tests)
class TestOwnWork:
    """check_own_work rejects every way of handing in the library's reference and passes own code."""

    @staticmethod
    def run(fn, reference=losses.kl_sparsity, *args):
        args = args or (0.05, torch.rand(8))
        checks.check_own_work(fn, reference, *args)

    def test_honest_implementations_pass_and_say_so(self, capsys):
        self.run(kl_student)
        self.run(kl_swapped)  # wrong, but its own: the value tests catch it, not this check
        self.run(lambda mu, logvar: 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1), losses.gaussian_kl,
                 torch.zeros(2, 3), torch.zeros(2, 3))
        out = capsys.readouterr().out
        assert out.count("check_own_work:") == 3 and "kl_student computes its result without" in out

    def test_importable_from_self_checks_and_the_library_is_restored(self):
        from funml_lib.self_checks import check_own_work  # the name the autograder cells import

        import funml_lib
        before = (losses.kl_sparsity.__code__, losses._kl_bernoulli.__code__)
        with pytest.raises(CheckFailed):
            check_own_work(lambda r, q: funml_lib.kl_sparsity(r, q), funml_lib.kl_sparsity, 0.05, torch.rand(8))
        assert (losses.kl_sparsity.__code__, losses._kl_bernoulli.__code__) == before
        assert funml_lib.kl_sparsity is losses.kl_sparsity
        assert float(funml_lib.kl_sparsity(0.05, torch.tensor([0.05]))) == pytest.approx(0.0, abs=1e-6)
        assert "_FUNML_OWN_WORK_HITS" not in vars(losses)

    @pytest.mark.parametrize("how", ["alias", "copy", "partial", "wraps", "bound"])
    def test_reference_under_another_name_fails(self, how):
        import functools
        import types

        ref = losses.kl_sparsity
        fn = {"alias": lambda: ref,
              "copy": lambda: types.FunctionType(ref.__code__, ref.__globals__, "kl_divergence"),
              "partial": lambda: functools.partial(ref),
              "wraps": lambda: functools.wraps(ref)(lambda *a: kl_student(*a)),
              "bound": lambda: types.MethodType(lambda self, r, q: ref(r, q), object())}[how]()
        with pytest.raises(CheckFailed, match="funml_lib's kl_sparsity"):
            self.run(fn)

    @pytest.mark.parametrize("how", ["top-level name", "module attribute", "package attribute",
                                     "import inside", "closure", "default argument", "private helper",
                                     "callable object", "caught and swallowed", "re-raised"])
    def test_calling_the_reference_fails(self, how):
        import funml_lib
        from funml_lib.losses import kl_sparsity

        def closure():
            ref = losses.kl_sparsity
            return lambda r, q: ref(r, q)

        def inside(r, q):
            from funml_lib.losses import kl_sparsity as mine
            return mine(r, q)

        def swallowed(r, q):
            try:
                return kl_sparsity(r, q)
            except Exception:
                return kl_student(r, q)

        def reraised(r, q):
            try:
                return funml_lib.kl_sparsity(r, q)
            except RuntimeError as err:
                raise ValueError("mine") from err

        class Kl:
            def __call__(self, r, q):
                return losses.kl_sparsity(r, q)

        fn = {"top-level name": lambda r, q: kl_sparsity(r, q),
              "module attribute": lambda r, q: losses.kl_sparsity(r, q),
              "package attribute": lambda r, q: funml_lib.kl_sparsity(r, q),
              "import inside": inside,
              "closure": closure(),
              "default argument": lambda r, q, _k=kl_sparsity: _k(r, q),
              "private helper": lambda r, q: losses._kl_bernoulli(r, q),
              "callable object": Kl(),
              "caught and swallowed": swallowed,
              "re-raised": reraised}[how]
        with pytest.raises(CheckFailed, match="calls funml_lib's kl_sparsity"):
            self.run(fn)

    def test_stub_passes_through_and_crash_is_reported(self):
        def stub(rho, rho_hat):
            raise NotImplementedError()

        with pytest.raises(NotImplementedError):
            self.run(stub)
        with pytest.raises(CheckFailed, match="raised ZeroDivisionError"):
            self.run(lambda r, q: 1 / 0)
        with pytest.raises(TypeError, match="student_fn must be your function"):
            checks.check_own_work(None, losses.kl_sparsity)

    def test_global_random_state_untouched(self):
        rho_hat = torch.full((8,), 0.2)
        torch.manual_seed(3)
        expected = torch.rand(3)
        torch.manual_seed(3)
        self.run(lambda r, q: kl_student(r, q + 0 * torch.rand(q.shape)), losses.kl_sparsity, 0.05, rho_hat)
        assert torch.equal(torch.rand(3), expected)


def test_own_work_allows_other_library_functions_that_share_argument_checks(capsys):
    # squared_error and gaussian_kl share losses._check_rows: using one is not calling the other
    def kl_with_library_helper(mu, logvar):
        _ = losses.squared_error(mu, mu)
        return 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1)

    checks.check_own_work(kl_with_library_helper, losses.gaussian_kl, torch.zeros(2, 3), torch.zeros(2, 3))
    assert "computes its result without funml_lib's gaussian_kl" in capsys.readouterr().out
