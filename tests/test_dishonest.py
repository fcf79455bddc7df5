"""Dishonest submissions score no more than an honest wrong answer (0); correct ones score full.

Most attacks are probed in one sandbox per exercise (the probes of several answers batch into one
process, like a submission's exercises do); attacks on the process itself get their own run.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import nbformat
import pytest

from coursekit.example_chapter import example_chapter
from coursekit.grading import functions, sandbox
from coursekit.grading.job import grade_submission
from coursekit.grading.sandbox import Limits

SECRET = "test-secret"
LIMITS = Limits(wall_s=120, cpu_s=60, result_bytes=30_000_000)

KL_OK = """
def kl_divergence(rho, rho_hat):
    rho_hat = rho_hat.clamp(1e-6, 1 - 1e-6)
    return rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
"""
KL_WRONG = """
def kl_divergence(rho, rho_hat):   # honest mistake: arguments swapped
    rho_hat = rho_hat.clamp(1e-6, 1 - 1e-6)
    return rho_hat * torch.log(rho_hat / rho) + (1 - rho_hat) * torch.log((1 - rho_hat) / (1 - rho))
"""
KL_ATTACKS = {
    "rebind the self-checks": "import funml_lib.self_checks as s\ns.check_kl_sparsity = lambda f: None\n"
                              "def kl_divergence(rho, rho_hat):\n    return rho_hat * 0\n",
    "monkeypatch torch": "torch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a: True\n"
                         "torch.isfinite = lambda t: torch.ones_like(t, dtype=torch.bool)\n"
                         "def kl_divergence(rho, rho_hat):\n    return rho_hat * 0\n",
    "lying tensor subclass": "class Liar(torch.Tensor):\n    def __eq__(self, o): return True\n"
                             "    def allclose(self, *a, **k): return True\n    def item(self): return 0.0\n"
                             "def kl_divergence(rho, rho_hat):\n    return (rho_hat * 0).as_subclass(Liar)\n",
    "inspect.getsource of the library": "import inspect\nimport funml_lib.losses as L\n"
                                        "exec(inspect.getsource(L._kl_bernoulli))\n"
                                        "kl_divergence = _kl_bernoulli\n",
    "import the library": "from funml_lib import kl_sparsity as kl_divergence\n",
    "read the reference from disk": "src = open(%r).read()\nexec(src)\nkl_divergence = kl_sparsity\n"
                                    % str(sandbox.PROJECT_ROOT / "funml_lib" / "losses.py"),
    "fake verdict on stdout": "import json\nprint(json.dumps({'ok': True, 'value': {}}))\n"
                              "def kl_divergence(rho, rho_hat):\n    return rho_hat * 0\n",
    "nan_to_num instead of a clamp":
        "def kl_divergence(rho, rho_hat):\n"
        "    kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))\n"
        "    return torch.nan_to_num(kl, posinf=1e6)\n",
    "log base 2": "def kl_divergence(rho, rho_hat):\n    rho_hat = rho_hat.clamp(1e-6, 1 - 1e-6)\n"
                  "    return rho * torch.log2(rho / rho_hat) + (1 - rho) * torch.log2((1 - rho) / (1 - rho_hat))\n",
    "numpy, no gradient": "import numpy as np\ndef kl_divergence(rho, rho_hat):\n"
                          "    q = np.clip(rho_hat.detach().numpy(), 1e-6, 1 - 1e-6)\n"
                          "    return torch.tensor(rho * np.log(rho / q) + (1 - rho) * np.log((1 - rho) / (1 - q)),"
                          " dtype=torch.float32)\n",
    "clamps its input in place": "def kl_divergence(rho, rho_hat):\n    rho_hat.clamp_(1e-6, 1 - 1e-6)\n"
                                 "    return rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))\n",
}
KL_STDERR = {  # correct answers that write to stderr: full points
    "warnings.warn": "import warnings\n" + KL_OK.replace("    rho_hat = rho_hat.clamp",
                                                         "    warnings.warn('clamping')\n    rho_hat = rho_hat.clamp"),
    "logging.warning": "import logging\n" + KL_OK.replace("    rho_hat = rho_hat.clamp",
                                                          "    logging.warning('clamping')\n    rho_hat = rho_hat.clamp"),
    "print to stderr": "import sys\n" + KL_OK.replace("    rho_hat = rho_hat.clamp",
                                                      "    print('debug', file=sys.stderr)\n    rho_hat = rho_hat.clamp"),
}

GKL_OK = "def gaussian_kl_closed_form(mu, logvar):\n    return 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1)\n"
GKL_ATTACKS = {
    "estimators.gaussian_kl_full": "from funml_lib.estimators import gaussian_kl_full\n"
                                   "def gaussian_kl_closed_form(mu, logvar):\n"
                                   "    return gaussian_kl_full(mu, torch.diag_embed(logvar.exp()))\n",
    ".tolist(), no gradient": "def gaussian_kl_closed_form(mu, logvar):\n"
                              "    rows = [0.5 * sum(m * m + math.exp(v) - 1 - v for m, v in zip(a, b))\n"
                              "            for a, b in zip(mu.tolist(), logvar.tolist())]\n"
                              "    return torch.tensor(rows)\n",
    "mutates mu in place": "def gaussian_kl_closed_form(mu, logvar):\n    mu.pow_(2)\n"
                           "    return 0.5 * (mu + logvar.exp() - 1 - logvar).sum(1)\n",
    "bits": "def gaussian_kl_closed_form(mu, logvar):\n"
            "    return 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1) / math.log(2)\n",
    "cpu only": "def gaussian_kl_closed_form(mu, logvar):\n"
                "    one = torch.full(mu.shape, 1.0)\n    return 0.5 * (mu ** 2 + logvar.exp() - one - logvar).sum(1)\n",
}
GKL_WRONG = "def gaussian_kl_closed_form(mu, logvar):\n    return (mu ** 2 + logvar.exp() - 1 - logvar).sum(1)\n"

REP_OK = "def reparameterize(mu, logvar):\n    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)\n"
REP_ATTACKS = {
    "PyTorchExamplesVAE.reparameterize": "from funml_lib import PyTorchExamplesVAE\n"
                                         "reparameterize = PyTorchExamplesVAE.reparameterize\n",
    "numpy noise": "import numpy as np\ndef reparameterize(mu, logvar):\n"
                   "    eps = torch.from_numpy(np.random.randn(*mu.shape).astype('float32'))\n"
                   "    return mu + torch.exp(0.5 * logvar) * eps\n",
    "cpu randn without device": "def reparameterize(mu, logvar):\n"
                                "    return mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape)\n",
    "detached": "def reparameterize(mu, logvar):\n"
                "    with torch.no_grad():\n        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)\n",
    "uniform noise": "def reparameterize(mu, logvar):\n"
                     "    eps = (torch.rand_like(mu) - 0.5) * math.sqrt(12)\n    return mu + torch.exp(0.5 * logvar) * eps\n",
}
REP_WRONG = "def reparameterize(mu, logvar):\n    return mu + logvar.exp() * torch.randn_like(mu)\n"

MASK_OK = ("def mask_noise(x, fraction):\n    keep = torch.rand(x.shape, device=x.device) >= fraction\n"
           "    return x * keep.to(x.dtype)\n")
MASK_ATTACKS = {
    "cpu-only mask": "def mask_noise(x, fraction):\n    return x * (torch.rand(x.shape) >= fraction).float()\n",
    "in place": "def mask_noise(x, fraction):\n    x.mul_((torch.rand_like(x) >= fraction).to(x.dtype))\n    return x\n",
    "library": "from funml_lib.corruptions import corrupt_mask\n"
               "def mask_noise(x, fraction):\n    return corrupt_mask(x, fraction)\n",
    "same mask for every image": "def mask_noise(x, fraction):\n"
                                 "    return x * (torch.rand_like(x[:1]) >= fraction).to(x.dtype)\n",
}
MASK_WRONG = "def mask_noise(x, fraction):\n    return x * (torch.rand_like(x) < fraction).to(x.dtype)\n"


# other honest ways to write each answer: full points too (no false alarms from the probes)
VARIANTS = {
    "ex-sparse-4-tests": {
        "eps added": "def kl_divergence(rho, rho_hat):\n    e = 1e-8\n    return rho * torch.log(rho / (rho_hat + e))"
                     " + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat + e))\n",
        "clamp 1e-7, log1p": "def kl_divergence(rho, rho_hat):\n    q = torch.clamp(rho_hat, 1e-7, 1 - 1e-7)\n"
                             "    return rho * (math.log(rho) - q.log()) + (1 - rho) * (math.log(1 - rho) - torch.log1p(-q))\n",
        "rho as a tensor": "def kl_divergence(rho, rho_hat):\n    rho = torch.tensor(rho)\n"
                           "    q = rho_hat.clamp(1e-6, 1 - 1e-6)\n"
                           "    return rho * torch.log(rho / q) + (1 - rho) * torch.log((1 - rho) / (1 - q))\n"},
    "ex-vae-kl-tests": {
        "negative form": "def gaussian_kl_closed_form(mu, logvar):\n"
                         "    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)\n",
        "in float64": "def gaussian_kl_closed_form(mu, logvar):\n    mu, logvar = mu.double(), logvar.double()\n"
                      "    return (0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1)).float()\n",
        # review: torch.distributions checks its arguments with .item(), which meta tensors cannot
        # answer (a GPU can): these scored 0 with "on tensors of another device it raised"
        "torch.distributions": "from torch.distributions import Normal, kl_divergence as kld\n"
                               "def gaussian_kl_closed_form(mu, logvar):\n    q = Normal(mu, (0.5 * logvar).exp())\n"
                               "    return kld(q, Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(-1)\n"},
    "ex-vae-reparam-tests": {
        "pytorch examples": "def reparameterize(mu, logvar):\n    std = logvar.mul(0.5).exp_()\n"
                            "    eps = torch.randn(mu.size(), device=mu.device)\n    return eps.mul(std).add_(mu)\n",
        "torch.normal": "def reparameterize(mu, logvar):\n"
                        "    eps = torch.normal(torch.zeros_like(mu), torch.ones_like(mu))\n"
                        "    return mu + eps * torch.exp(logvar / 2)\n",
        "rsample": "def reparameterize(mu, logvar):\n"
                   "    return torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).rsample()\n",
        "guard with .any()": "def reparameterize(mu, logvar):\n    if (logvar > 30).any():\n"
                             "        print('huge logvar')\n"
                             "    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)\n"},
    "ex-dae-3-tests": {
        "bernoulli": "def mask_noise(x, fraction):\n    return x * torch.bernoulli(torch.full_like(x, 1 - fraction))\n",
        "rescaled dropout": "def mask_noise(x, fraction):\n    return F.dropout(x, p=fraction) * (1 - fraction)\n",
        "index assignment": "def mask_noise(x, fraction):\n    y = x.clone()\n    y[torch.rand_like(x) < fraction] = 0\n"
                            "    return y\n"},
}


def probe_many(gid: str, answers: dict[str, str]) -> dict[str, tuple[float, str]]:
    """(points, message) for each answer, all probed in one sandbox process."""
    calls = functions.make_calls(gid, SECRET)
    payload = {"exercises": []}
    for label, code in answers.items():
        ex = functions.payload_for(gid, calls, code, seed=1)
        ex["gid"] = label  # the reply's key; the probe is gid's
        payload["exercises"].append(ex)
    result = sandbox.run("", functions.HARNESS, payload, limits=LIMITS)
    assert result.ok, result.reason
    return {label: functions.judge(gid, calls, result.value[label], 3) for label in answers}


@pytest.mark.parametrize("gid, ok, wrong, attacks, message_of", [
    ("ex-sparse-4-tests", KL_OK, KL_WRONG, {**KL_ATTACKS, **KL_STDERR}, {
        "log base 2": "1.443x the reference: a logarithm in base 2 (bits)?",
        "nan_to_num instead of a clamp": "replacing inf afterwards does not",
        "numpy, no gradient": "no gradient flows back",
        "clamps its input in place": "changed its input in place",
        "lying tensor subclass": "a subclass of torch.Tensor",
        "import the library": "does not define a function kl_divergence (the answer cell raised "
                              "ModuleNotFoundError: No module named 'funml_lib')"}),
    ("ex-vae-kl-tests", GKL_OK, GKL_WRONG, GKL_ATTACKS, {
        ".tolist(), no gradient": "no gradient flows back",
        "mutates mu in place": "changed its input in place",
        "bits": "1.443x the reference",
        "cpu only": "meta tensors"}),
    ("ex-vae-reparam-tests", REP_OK, REP_WRONG, REP_ATTACKS, {
        "numpy noise": "meta tensors", "cpu randn without device": "meta tensors",
        "detached": "no gradient flows back", "uniform noise": "a normal has 68.3%"}),
    ("ex-dae-3-tests", MASK_OK, MASK_WRONG, MASK_ATTACKS, {
        "cpu-only mask": "meta tensors", "in place": "changed its input in place",
        "same mask for every image": "every image got the same mask"}),
])
def test_attacks_score_no_more_than_an_honest_wrong_answer(gid, ok, wrong, attacks, message_of):
    got = probe_many(gid, {"honest": ok, "honest wrong": wrong, **VARIANTS[gid], **attacks})
    for label in ["honest", *VARIANTS[gid]]:
        assert got[label] == (3.0, f"{functions.PROBES[gid][1]}: all checks passed"), label
    baseline = got["honest wrong"][0]
    assert baseline == 0.0
    for label in attacks:
        points, message = got[label]
        if label in KL_STDERR:
            assert points == 3.0, (label, message)
        else:
            assert points <= baseline, (label, message)
        if label in message_of:
            assert message_of[label] in message, (label, message)


# ------------------------------------------------------------------- whole submissions, end to end
def course(tmp_path: Path, kl_code: str, number_code: str = "kl_value = 0.0") -> tuple[Path, Path]:
    src = tmp_path / "course" / "source" / "01_demo" / "01_demo.ipynb"
    sub = tmp_path / "course" / "submitted" / "ada" / "01_demo" / "01_demo.ipynb"
    src.parent.mkdir(parents=True)
    sub.parent.mkdir(parents=True)
    nb = example_chapter()
    nbformat.write(nb, src)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid == "ex-demo-2-answer":
            cell.source = kl_code
        if gid == "ex-demo-3-answer":
            cell.source = number_code
    nbformat.write(nb, sub)
    return src, sub


def test_tampering_process_scores_zero_and_changes_nothing(tmp_path):
    attack = (KL_WRONG + "import os, subprocess\n"
              "root = %r\n"
              "for p in (root + '/gradebook.db', root + '/source/01_demo/01_demo.ipynb'):\n"
              "    try:\n        open(p, 'w').write('hacked')\n    except OSError:\n        pass\n"
              "if os.fork() == 0:\n    os.setsid()\n    os.execv('/bin/sh', ['sh', '-c', "
              "'sleep 2; echo hacked > %s/late.txt'])\n")
    src, sub = course(tmp_path, "")
    root = tmp_path / "course"
    (root / "gradebook.db").write_text("grades")
    nb = nbformat.read(sub, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "ex-demo-2-answer":
            cell.source = attack % (str(root), str(root))
    nbformat.write(nb, sub)
    before = src.read_text()
    scores = grade_submission(src, sub, tmp_path / "out", secret=SECRET, limits=LIMITS, display=False)
    assert scores["tests"]["ex-demo-2-tests"]["points"] == 0.0
    assert (root / "gradebook.db").read_text() == "grades" and src.read_text() == before
    assert not (root / "late.txt").exists()


def test_honest_submission_end_to_end_and_the_job_files(tmp_path):
    number = "import math\nkl_value = 0.05 * math.log(0.25) + 0.95 * math.log(0.95 / 0.8)\n"
    src, sub = course(tmp_path, KL_STDERR["warnings.warn"], number)
    nb = nbformat.read(sub, as_version=4)
    answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex-demo-2-answer")
    copy = nbformat.from_dict(json.loads(json.dumps(answer)))
    copy.id = "pasted-copy"  # an honest copy-paste of the answer cell
    nb.cells.insert(nb.cells.index(answer) + 1, copy)
    tests = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex-demo-3-tests")
    nb.cells.remove(tests)  # deleted tests cell: restored from the source
    nbformat.write(nb, sub)
    scores = grade_submission(src, sub, tmp_path / "out", secret=SECRET, limits=LIMITS, display=True)
    assert scores["student"] == "ada" and scores["chapter"] == "01_demo" and scores["ok"]
    assert scores["tests"]["ex-demo-2-tests"] == {"points": 3.0, "max": 3.0,
                                                  "message": "kl_divergence: all checks passed"}
    assert scores["tests"]["ex-demo-3-tests"]["points"] == 2.0
    assert "cell ex-demo-2-answer appears 2 times; the first one is graded" in scores["notes"]
    assert "cell ex-demo-3-tests was deleted; restored from the source" in scores["notes"]
    assert json.loads((tmp_path / "out" / "scores.json").read_text()) == scores
    normalized = nbformat.read(tmp_path / "out" / "normalized.ipynb", as_version=4)
    assert [c.source for c in normalized.cells if "nbgrader" not in c.metadata] == [
        c.source for c in example_chapter().cells if "nbgrader" not in c.metadata]
    # the display run's outputs (library importable there) are merged for the hand grader
    shown = ["".join(o.get("text", "") for o in c.outputs) for c in normalized.cells if c.cell_type == "code"]
    assert any(text.startswith("check_kl_sparsity: all 7 checks passed.\n") for text in shown), scores["notes"]


def test_broken_file_scores_zero_with_a_reason_naming_the_student(tmp_path):
    src, sub = course(tmp_path, KL_OK)
    sub.write_text(sub.read_text()[:500])  # truncated
    scores = grade_submission(src, sub, tmp_path / "out", secret=SECRET, limits=LIMITS, display=False)
    assert not scores["ok"] and scores["reason"].startswith("ada: 01_demo: not a notebook: truncated JSON")
    assert {t["points"] for t in scores["tests"].values()} == {0.0}
    assert not (tmp_path / "out" / "normalized.ipynb").exists()


def test_answer_that_kills_its_process_scores_zero_and_the_job_goes_on(tmp_path):
    number = "kl_value = 0.05 * math.log(0.25) + 0.95 * math.log(0.95 / 0.8)\n"
    src, sub = course(tmp_path, KL_OK + "import os\nos._exit(0)\n", number)
    scores = grade_submission(src, sub, tmp_path / "out", secret=SECRET, limits=LIMITS, display=True)
    assert scores["ok"] and scores["tests"]["ex-demo-3-tests"]["points"] == 2.0
    assert scores["tests"]["ex-demo-2-tests"] == {
        "points": 0.0, "max": 3.0,
        "message": "kl_divergence: the process ended without an answer (exit status 0)"}
    assert any(n.startswith("display run (no effect on points): DeadKernelError") for n in scores["notes"]), \
        scores["notes"]
    assert (tmp_path / "out" / "normalized.ipynb").is_file()


# --------------------------------------------------------------------- found by a review (cheating)
FORGED_REPLY = (  # writes its own reply on the private result pipe, with outputs that are not dicts
    "import sys, os, json\n"
    "calls = [{'outs': [1], 'mutated': [False, False]} for _ in range(6)]\n"
    "os.write(int(sys.argv[1]), json.dumps({'ok': True, 'value': {'forged': {'calls': calls}}}).encode())\n"
    "os._exit(0)\n")


def test_forged_reply_with_odd_values_scores_zero_and_does_not_crash_the_grader():
    # before: AttributeError ('int' object has no attribute 'get') escaped judge(): the job died
    # without scores.json
    got = probe_many("ex-sparse-4-tests", {"forged": FORGED_REPLY})
    assert got["forged"] == (0.0, "kl_divergence: the reply could not be checked (AttributeError)")


def test_number_answers_refuse_huge_powers_before_computing_them():
    # the grader evaluates number answers in its own process: (10**299)**1024 built a 1-Mbit integer
    # (~20 ms) before refusing it, and a 20,000-character cell of such lines cost ~20 s of CPU
    import tracemalloc

    from coursekit.grading.numbers import read_numbers

    tracemalloc.start()
    try:
        values, problems = read_numbers("a = (10**299)**1024 % 7\nb = 2**996\nc = 10**300\n")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert problems == {"a": "a number larger than 1e300"}
    assert values == {"b": 2.0 ** 996, "c": 1e300}
    assert peak < 60_000, peak  # the refused power alone would take 128 kB


def test_lone_surrogate_in_an_answer_is_graded_not_a_crash(tmp_path):
    # "\ud800" is valid JSON but not UTF-8: writing normalized.ipynb raised UnicodeEncodeError, the
    # job wrote no scores.json and the student lost the points of every exercise
    number = "kl_value = 0.05 * math.log(0.25) + 0.95 * math.log(0.95 / 0.8)  # \ud800\n"
    src, sub = course(tmp_path, KL_OK)
    data = json.loads(sub.read_text())
    for cell in data["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "ex-demo-3-answer":
            cell["source"] = number
    sub.write_text(json.dumps(data))  # ensure_ascii: the surrogate is written as the escape \ud800
    scores = grade_submission(src, sub, tmp_path / "out", secret=SECRET, limits=LIMITS, display=False)
    assert scores["ok"] and scores["tests"]["ex-demo-3-tests"]["points"] == 2.0
    assert scores["tests"]["ex-demo-2-tests"]["points"] == 3.0
    normalized = nbformat.read(tmp_path / "out" / "normalized.ipynb", as_version=4)
    answer = next(c for c in normalized.cells
                  if c.metadata.get("nbgrader", {}).get("grade_id") == "ex-demo-3-answer")
    assert answer.source == number.replace("\ud800", "\ufffd")


def test_number_answers_read_augmented_and_tuple_assignments_as_python_does():
    # honest answers that Python computes correctly were read as the first partial value (+=) or
    # as "not assigned" (tuple), and scored 0
    from coursekit.grading.numbers import read_numbers

    values, problems = read_numbers("import math\nkl = 0.05 * math.log(0.25)\nkl += 0.95 * math.log(0.95 / 0.8)\n"
                                    "factor_on, factor_off = 0.5 * (1 - 0.5), 0.01 * 0.99\n"
                                    "z = 1\nz, w = 2, z\nc = 2\nc *= unknown\n")
    assert values == {"kl": 0.05 * math.log(0.25) + 0.95 * math.log(0.95 / 0.8), "factor_on": 0.25,
                      "factor_off": 0.01 * 0.99, "z": 2.0, "w": 1.0}
    assert problems == {"c": "the name 'unknown' is not a number assigned above in this cell"}


def test_display_outputs_carry_no_script_to_the_hand_graders_browser():
    # the display run's outputs reach nbgrader's formgrader and feedback, which render HTML unsanitized:
    # an answer's IPython.display.HTML('<script>...') ran in the instructor's logged-in browser
    from coursekit.grading.job import _safe_outputs

    outs = [{"output_type": "display_data", "metadata": {"text/html": {"isolated": True}},
             "data": {"text/html": "<script>fetch('/formgrader/api/grade')</script>", "text/plain": "<HTML>"}},
            {"output_type": "display_data", "metadata": {}, "data": {"application/javascript": "alert(1)"}},
            {"output_type": "execute_result", "execution_count": 3, "metadata": {"image/png": {"width": 3}},
             "data": {"image/png": "iVBORw0KGgo=", "image/svg+xml": "<svg onload='alert(1)'/>",
                      "text/plain": "<Figure>"}},
            {"output_type": "stream", "name": "stdout", "text": "<b>kept as text</b>\n"}]
    assert [dict(o) for o in _safe_outputs(outs)] == [
        {"output_type": "display_data", "metadata": {}, "data": {"text/plain": "<HTML>"}},
        {"output_type": "execute_result", "execution_count": 3, "metadata": {"image/png": {"width": 3}},
         "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}},
        {"output_type": "stream", "name": "stdout", "text": "<b>kept as text</b>\n"}]


def test_number_answers_accept_math_aliases_pow_and_round():
    # honest spellings that scored 0 ("math.pow is not one of the allowed functions", "only math
    # functions may be called" for `ln` after `from math import log as ln`, "m.log" after `import math as m`)
    from coursekit.grading.numbers import read_numbers

    values, problems = read_numbers("import math as m\nfrom math import log as ln, pi as PI\n"
                                    "a = m.log(4)\nb = ln(4)\nc = PI\nd = math.pow(2, 10)\ne = round(0.09394, 3)\n"
                                    "f = round(0.5, 0.5)\ng = math.pow(10, 400)\n")
    assert values == {"a": math.log(4), "b": math.log(4), "c": math.pi, "d": 1024.0, "e": 0.094}
    assert problems == {"f": "round(x, ndigits) needs a whole number of digits", "g": "pow(10, 400) is too large"}


def test_copy_pasted_answer_cell_with_the_stub_left_above_is_graded_on_the_answer(tmp_path):
    # the first copy was graded even when it was the untouched stub: an honest answer scored 0
    stub = "def kl_divergence(rho, rho_hat):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
    src, sub = course(tmp_path, stub)
    nb = nbformat.read(sub, as_version=4)
    answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex-demo-2-answer")
    for i, code in enumerate([KL_WRONG, KL_OK]):  # two copies below the stub: only the first answered counts
        copy = nbformat.from_dict(json.loads(json.dumps(answer)))
        copy.id, copy.source = f"copy-{i}", code
        nb.cells.insert(nb.cells.index(answer) + 1 + i, copy)
    nbformat.write(nb, sub)
    scores = grade_submission(src, sub, tmp_path / "out", secret=SECRET, limits=LIMITS, display=False)
    assert scores["tests"]["ex-demo-2-tests"]["points"] == 0.0  # KL_WRONG, never the best copy
    assert ("cell ex-demo-2-answer appears 3 times; copy 2, the first one without the stub's "
            "NotImplementedError, is graded") in scores["notes"]
    nb.cells.remove(next(c for c in nb.cells if c.get("id") == "copy-0"))
    nbformat.write(nb, sub)
    scores = grade_submission(src, sub, tmp_path / "out", secret=SECRET, limits=LIMITS, display=False)
    assert scores["tests"]["ex-demo-2-tests"]["points"] == 3.0


def test_a_student_whose_id_is_submitted_is_named_right():
    from coursekit.grading.job import _student

    assert _student(Path("c/submitted/submitted/02_x/02_x.ipynb")) == "submitted"  # was "02_x"
    assert _student(Path("c/submitted/ada/02_x/02_x.ipynb")) == "ada"
