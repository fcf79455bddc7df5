"""Probes for function answers, keyed by the tests cell's grade_id; the sandbox runs them.

    calls = make_calls("ex-sparse-4-tests", secret)           # inputs, in the grader
    reply = sandbox.run(code, HARNESS, {"exercises": [...]})   # outputs, in the sandbox
    points, message = judge("ex-sparse-4-tests", calls, reply_for_it, max_points)

Inputs derive from the course's secret, so a student cannot know them in advance. The sandbox
returns outputs, shapes, dtypes, devices, whether inputs were changed and gradient values; the
references are computed here, on the grader's own copies of the inputs, with funml_lib.

Scoring is all or nothing per exercise: full points when every check passes, else 0 and the message
of the first failed check. Any answer that is wrong in any checked way therefore scores exactly what
an honest wrong answer scores (0); a correct answer's extra output (stderr, warnings) is ignored.
Checks per exercise:
- values on secret inputs and hand cases (relative 1e-4), shape, floating dtype;
- inputs not changed in place;
- gradient VALUES w.r.t. the inputs for a random upstream vector, where the statement asks that
  gradients flow (both KLs, reparameterize): numpy, .tolist() or detached answers fail;
- device: the function called on `meta` tensors must return a `meta` tensor (the grader has no
  second device; meta stands in for it): catches tensors created on the CPU without `device=`,
  numpy noise and .cpu() calls;
- random functions (mask_noise, reparameterize): distribution checks with tolerances of several
  standard errors (masked share, values kept exactly, masks independent across pixels, images and
  calls; standardized noise with mean 0, spread 1, a normal's share within one sigma, z - mu
  proportional to sigma, fresh noise on each call).
"""
from __future__ import annotations

import base64
import hashlib
import math
from typing import Any

import numpy as np
import torch

# tests grade_id -> (kind, the function's name in the answer cell)
PROBES: dict[str, tuple[str, str]] = {
    "ex-sparse-4-tests": ("bernoulli_kl", "kl_divergence"),
    "ex-demo-2-tests": ("bernoulli_kl", "kl_divergence"),
    "ex-dae-3-tests": ("mask", "mask_noise"),
    "ex-vae-kl-tests": ("gaussian_kl", "gaussian_kl_closed_form"),
    "ex-vae-reparam-tests": ("reparameterize", "reparameterize"),
}
LN2 = math.log(2.0)


# ----------------------------------------------------------------------------- encoding (both sides)
def encode(t: torch.Tensor) -> dict:
    a = t.detach().to(torch.float64).cpu().contiguous().numpy()
    return {"t": "tensor", "shape": list(a.shape), "b64": base64.b64encode(a.tobytes()).decode()}


def decode(d: Any) -> np.ndarray | None:
    """A float64 array from an encoded tensor (None when it is not one or the sizes disagree)."""
    try:
        shape = [int(s) for s in d["shape"]]
        raw = base64.b64decode(d["b64"], validate=True)
        a = np.frombuffer(raw, dtype="<f4" if d.get("dt") == "f4" else "<f8").astype(np.float64)
        return a.reshape(shape) if a.size == math.prod(shape) else None
    except (KeyError, TypeError, ValueError):
        return None


def _gen(secret: str, gid: str) -> torch.Generator:
    seed = int.from_bytes(hashlib.sha256(f"{secret}\0{gid}".encode()).digest()[:8], "little")
    return torch.Generator().manual_seed(seed & ((1 << 63) - 1))


def _u(g: torch.Generator, shape: tuple[int, ...], low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(*shape, generator=g)


# --------------------------------------------------------------------------------- inputs per kind
def make_calls(gid: str, secret: str) -> list[dict]:
    """The calls of one exercise: {"args": [...], "grad": [arg indices], "upstream", "meta", "repeat"}."""
    kind, _ = PROBES[gid]
    g = _gen(secret, gid)
    calls: list[dict] = []

    def call(*args: Any, grad: tuple[int, ...] = (), meta: bool = False, repeat: int = 1,
             label: str = "") -> None:
        calls.append({"args": list(args), "grad": list(grad), "meta": meta, "repeat": repeat,
                      "label": label})

    if kind == "bernoulli_kl":
        rho = round(float(_u(g, (1,), 0.02, 0.3)), 4)
        call(rho, _u(g, (37,), 0.01, 0.99), label=f"rho={rho}, rho_hat of shape (37,)")
        call(0.5, _u(g, (2, 3), 0.05, 0.95), label="rho=0.5, rho_hat of shape (2, 3)")
        call(0.5, torch.tensor([0.25, 0.5]), label="rho=0.5, rho_hat=[0.25, 0.5]")
        call(rho, torch.tensor([0.0, 1.0, 1e-4, 1 - 1e-4]), label=f"rho={rho}, rho_hat=[0, 1, 1e-4, 1-1e-4]")
        call(rho, _u(g, (11,), 0.05, 0.95), grad=(1,), label="the gradient call")
        call(rho, torch.empty(37, device="meta"), meta=True, label="meta")
    elif kind == "gaussian_kl":
        call(_u(g, (7, 5), -2, 2), _u(g, (7, 5), -3, 2), label="mu, logvar of shape (7, 5)")
        call(torch.tensor([[1.0], [0.0], [0.0]]), torch.tensor([[0.0], [math.log(4.0)], [0.0]]),
             label="mu=[1, 0, 0], logvar=[0, log 4, 0] (one latent dimension)")
        call(_u(g, (6, 3), -2, 2), _u(g, (6, 3), -2, 1.5), grad=(0, 1), label="the gradient call")
        call(torch.empty(4, 3, device="meta"), torch.empty(4, 3, device="meta"), meta=True, label="meta")
    elif kind == "mask":
        f = round(float(_u(g, (1,), 0.2, 0.7)), 3)
        x = _u(g, (100, 784), 0.05, 1.0)
        call(x, f, repeat=2, label=f"x of shape (100, 784), fraction={f}")
        call(torch.ones(3, 784), 0.0, label="fraction=0")
        call(torch.ones(3, 784), 1.0, label="fraction=1")
        call(torch.empty(5, 784, device="meta"), f, meta=True, label="meta")
    elif kind == "reparameterize":
        n, k = 4000, 3
        mu_row, sigma = _u(g, (k,), -3, 3), _u(g, (k,), 0.3, 2.5)
        call(mu_row.repeat(n, 1), (2 * sigma.log()).repeat(n, 1), repeat=2,
             label=f"mu, logvar of shape ({n}, {k})")
        call(torch.tensor([[1.0, -2.0]]), torch.full((1, 2), -200.0), label="logvar=-200 (no spread)")
        call(_u(g, (6, 3), -2, 2), _u(g, (6, 3), -2, 1), grad=(0, 1), label="the gradient call")
        call(torch.empty(4, 3, device="meta"), torch.empty(4, 3, device="meta"), meta=True, label="meta")
    for c in calls:
        c["upstream"] = None
        if c["grad"]:
            out_shape = _out_shape(kind, c["args"])
            c["upstream"] = _u(g, out_shape, -1, 1)
    return calls


def _out_shape(kind: str, args: list) -> tuple[int, ...]:
    t = args[1] if kind == "bernoulli_kl" else args[0]
    return (t.shape[0],) if kind == "gaussian_kl" else tuple(t.shape)


def payload_for(gid: str, calls: list[dict], code: str, seed: int) -> dict:
    """The part of the sandbox's payload for one exercise (plain JSON)."""
    def arg(a: Any) -> Any:
        if isinstance(a, torch.Tensor):
            if a.device.type == "meta":
                return {"t": "meta", "shape": list(a.shape)}
            return encode(a)
        return {"t": "float", "v": float(a)}
    return {"gid": gid, "name": PROBES[gid][1], "code": code, "seed": seed,
            "calls": [{"args": [arg(a) for a in c["args"]], "grad": c["grad"], "meta": c["meta"],
                       "repeat": c["repeat"],
                       "upstream": encode(c["upstream"]) if c["upstream"] is not None else None}
                      for c in calls]}


# ------------------------------------------------------------------- the harness (runs in the sandbox)
HARNESS = r'''
import base64, math, sys, types
import numpy as _np
import torch
torch.set_num_threads(1)
_T = torch.Tensor
_detach, _to, _clone, _cpu = _T.detach, _T.to, _T.clone, _T.cpu
_contig, _numpy, _size = _T.contiguous, _T.numpy, _T.size
_dev = _T.device.__get__
_dtype = _T.dtype.__get__
_is_float = _T.is_floating_point
_req = _T.requires_grad.__get__
_equal, _grad, _tensor, _frombuffer = torch.equal, torch.autograd.grad, torch.tensor, _np.frombuffer
_f64, _f32 = torch.float64, torch.float32
_isinstance, _type, _str, _len = isinstance, type, str, len
_b64d, _b64e, _empty = base64.b64decode, base64.b64encode, torch.empty
import torch.distributions as _dist
_Dist = _dist.Distribution

def _enc(t):
    # float32 results travel as float32 (exact, half the size); everything else as float64
    small = _dtype(t) == _f32
    a = _numpy(_contig(_cpu(_to(_detach(t), _f32 if small else _f64))))
    return {"t": "tensor", "shape": [int(s) for s in a.shape], "dt": "f4" if small else "f8",
            "b64": _b64e(a.tobytes()).decode()}

def _dec(d, grad=False):
    if d["t"] == "float":
        return d["v"]
    if d["t"] == "meta":
        return _empty(*d["shape"], device="meta")
    a = _frombuffer(_b64d(d["b64"]), dtype="<f4" if d.get("dt") == "f4" else "<f8")
    a = a.reshape(d["shape"])
    return _tensor(a.copy(), dtype=_f32, requires_grad=grad)

def _describe(out):
    if _type(out) is not _T:
        kind = "a subclass of torch.Tensor" if _isinstance(out, _T) else _type(out).__name__
        return {"type": _str(kind)[:80]}
    info = {"type": "Tensor", "shape": [int(s) for s in _size(out)], "dtype": _str(_dtype(out)),
            "device": _str(_dev(out)), "float": bool(_is_float(out)), "requires_grad": bool(_req(out))}
    if info["device"] != "meta":
        info["value"] = _enc(out)
    return info

def _run_cell(code, scope):
    import ast
    code = "\n".join("# " + l if l.lstrip().startswith(("%", "!")) else l for l in code.splitlines())
    errors = []
    try:
        tree = ast.parse(code)
    except SyntaxError as err:
        return ["SyntaxError: line %s: %s" % (err.lineno, err.msg)]
    for stmt in tree.body:  # like a notebook cell, but one failing line does not stop the rest
        try:
            exec(compile(ast.Module(body=[stmt], type_ignores=[]), "<answer>", "exec"), scope)
        except BaseException as err:
            errors.append(("%s: %s" % (_type(err).__name__, err))[:300])
    return errors

def _one(fn, c):
    args = [_dec(a, i in c["grad"]) for i, a in enumerate(c["args"])]
    copies = [_clone(_detach(a)) if _isinstance(a, _T) and _dev(a).type != "meta" else None for a in args]
    outs, res = [], {}
    # on meta tensors torch.distributions' argument checks need values (.item()); a GPU has them
    validate = _Dist._validate_args
    if c["meta"]:
        _Dist.set_default_validate_args(False)
    try:
        for _ in range(c["repeat"]):
            try:
                out = fn(*args)
            except BaseException as err:
                return {"error": ("%s: %s" % (_type(err).__name__, err))[:300]}
            outs.append(out)
    finally:
        _Dist.set_default_validate_args(validate)
    res["outs"] = [_describe(o) for o in outs]
    res["mutated"] = [bool(cp is not None and not _equal(_detach(a), cp)) for a, cp in zip(args, copies)]
    if c["grad"]:
        out = outs[0]
        grads = None
        if _type(out) is _T and _req(out):
            try:
                grads = _grad(out, [args[i] for i in c["grad"]], grad_outputs=_dec(c["upstream"]),
                              allow_unused=True)
                grads = [None if g is None else _enc(g) for g in grads]
            except BaseException as err:
                res["grad_error"] = ("%s: %s" % (_type(err).__name__, err))[:300]
        res["grads"] = grads
    return res

def main(code, payload):
    results = {}
    for ex in payload["exercises"]:
        torch.manual_seed(ex["seed"])
        scope = {"__name__": "__main__", "torch": torch, "math": math, "np": _np, "numpy": _np,
                 "nn": torch.nn, "F": torch.nn.functional}
        errors = _run_cell(ex["code"], scope)
        fn = scope.get(ex["name"])
        r = {"cell_errors": errors[:5]}
        if not callable(fn):
            r["missing"] = True
        else:
            r["calls"] = [_one(fn, c) for c in ex["calls"]]
        results[ex["gid"]] = r
    return results
'''


# ------------------------------------------------------------------------------ judging (grader side)
class _Fail(Exception):
    pass


def _values(info: dict, shape: tuple[int, ...], label: str) -> np.ndarray:
    """The output as an array after the shape/type/finiteness checks; raises _Fail with a message."""
    if not isinstance(info, dict) or info.get("type") != "Tensor":
        what = info.get("type") if isinstance(info, dict) else "nothing"
        raise _Fail(f"with {label} it returned {what}, not a torch.Tensor")
    if not info.get("float"):
        raise _Fail(f"with {label} it returned dtype {info.get('dtype')}; expected a float tensor")
    if tuple(info.get("shape", ())) != shape:
        raise _Fail(f"with {label} it returned shape {tuple(info.get('shape', ()))}, expected {shape}")
    a = decode(info.get("value"))
    if a is None or a.shape != shape:
        raise _Fail(f"with {label} its output could not be read back")
    if not np.isfinite(a).all():
        raise _Fail(f"with {label} it returned {'NaN' if np.isnan(a).any() else 'inf'}")
    return a


def _close(a: np.ndarray, b: np.ndarray, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))


def _common(call: dict, res: dict, label: str) -> None:
    if "error" in res:
        if res["error"].startswith("NotImplementedError"):
            raise _Fail("it is still the homework stub (it raises NotImplementedError): write the body")
        raise _Fail(f"with {label} it raised {res['error']}")
    if any(res.get("mutated", [])):
        raise _Fail(f"with {label} it changed its input in place; return a new tensor and leave the "
                    "inputs as they are")


# .item() / bool() / float() of a tensor work on a GPU (the values are there) but not on meta tensors,
# which have none: such an answer is not device-bound, the meta stand-in cannot tell, so no verdict
META_NO_DATA = "RuntimeError: Tensor.item() cannot be called on meta tensors"


def _meta(res: dict, shape: tuple[int, ...]) -> None:
    if "error" in res and str(res["error"]).startswith(META_NO_DATA):
        return
    if "error" in res:
        raise _Fail("on tensors of another device (meta tensors stand in for a GPU) it raised "
                    f"{res['error'][:160]}; create every tensor on the input's device "
                    "(device=x.device, torch.*_like) and stay in torch (no numpy, no .cpu())")
    info = res["outs"][0]
    if info.get("type") != "Tensor" or info.get("device") != "meta":
        raise _Fail(f"called on meta tensors (a stand-in for a GPU) it returned "
                    f"{info.get('device') or info.get('type')} data; the result must stay on the "
                    "input's device")
    if tuple(info.get("shape", ())) != shape:
        raise _Fail(f"on meta tensors it returned shape {tuple(info.get('shape', ()))}, expected {shape}")


def _grads(res: dict, expected: list[np.ndarray], names: list[str]) -> None:
    grads = res.get("grads")
    if grads is None:
        raise _Fail("no gradient flows back to the inputs (the statement asks that gradients flow): "
                    "stay in torch, no .item(), .tolist(), numpy, .detach() or torch.no_grad()")
    for g, e, name in zip(grads, expected, names):
        a = decode(g) if g is not None else None
        if a is None:
            raise _Fail(f"no gradient reaches {name}")
        if not _close(a, e, rtol=1e-3, atol=1e-4):
            raise _Fail(f"the gradient with respect to {name} is wrong, although the values may be right")


def _ratio_hint(out: np.ndarray, ref: np.ndarray) -> str:
    mask = np.abs(ref) > 1e-3
    if not mask.any():
        return ""
    r = out[mask] / ref[mask]
    if np.allclose(r, r.mean(), rtol=1e-3) and abs(r.mean() - 1) > 1e-3:
        k = float(r.mean())
        hint = f"values are {k:.4g}x the reference"
        if abs(k - 1 / LN2) < 1e-3:
            return hint + ": a logarithm in base 2 (bits)? the answer is in nats (natural log)"
        if abs(k - 2) < 1e-3:
            return hint + ": a factor 1/2 missing?"
        if abs(k + 1) < 1e-3:
            return hint + ": the overall sign is wrong"
        return hint
    return ""


def _bernoulli(rho: float, q: torch.Tensor) -> torch.Tensor:
    from funml_lib.losses import kl_sparsity
    return kl_sparsity(rho, q.double())


def _judge_bernoulli(calls: list[dict], results: list[dict]) -> None:
    for i in range(4):
        c, res = calls[i], results[i]
        _common(c, res, c["label"])
        rho, q = c["args"]
        ref = _bernoulli(rho, q).numpy()
        info = res["outs"][0]
        if info.get("type") == "Tensor" and info.get("shape") == [] and q.dim() >= 1:
            raise _Fail(f"with {c['label']} it returned one number; return one KL per entry of rho_hat "
                        "(the sum over units happens in the loss)")
        if i == 3:  # the ends: finite, clamped values (a clamp anywhere in [1e-12, 1e-3] stays < 30 nats)
            try:
                a = _values(info, tuple(q.shape), c["label"])
            except _Fail as fail:
                if "NaN" in str(fail) or "inf" in str(fail):
                    raise _Fail("at rho_hat = 0 or 1 the result must stay finite; clamp rho_hat before the "
                                "logarithms, e.g. to [1e-6, 1 - 1e-6]") from None
                raise
            if not ((a[:2] >= 0) & (a[:2] <= 30)).all():
                raise _Fail(f"at rho_hat = 0 and 1 it returned {a[0]:.4g} and {a[1]:.4g} nats; a clamp of "
                            "rho_hat gives finite values of a few nats (about 0.49 and "
                            f"{ref[1]:.3g} with [1e-6, 1 - 1e-6]); replacing inf afterwards does not")
            if not _close(a[2:], ref[2:], rtol=1e-3):
                raise _Fail(f"at rho_hat = 1e-4 and 1 - 1e-4 expected {ref[2]:.5f} and {ref[3]:.5f}, got "
                            f"{a[2]:.5f} and {a[3]:.5f}; clamp only very close to 0 and 1")
            continue
        a = _values(info, tuple(q.shape), c["label"])
        if not _close(a, ref):
            swapped = _bernoulli_swapped(rho, q)
            hint = _ratio_hint(a, ref)
            if _close(a, swapped):
                hint = "you computed KL(rho_hat || rho); rho is the first argument"
            elif _close(a, (rho * torch.log(rho / q.double())).numpy()):
                hint = "only the 'unit on' term is there; add the (1 - rho) term"
            elif (a < -1e-6).any():
                hint = "some values are negative; a KL divergence never is"
            elif i == 1:
                hint = hint or "is rho hard-coded?"
            j = int(np.abs(a - ref).argmax())
            raise _Fail(f"with {c['label']}: expected {ref.flat[j]:.5f} at one entry, got {a.flat[j]:.5f}"
                        + (f"; {hint}" if hint else ""))
    c, res = calls[4], results[4]
    _common(c, res, c["label"])
    rho, q = c["args"]
    leaf = q.double().clone().requires_grad_(True)
    (_bernoulli(rho, leaf) * c["upstream"].double()).sum().backward()
    _grads(res, [leaf.grad.numpy()], ["rho_hat"])
    _meta(results[5], (37,))


def _bernoulli_swapped(rho: float, q: torch.Tensor) -> np.ndarray:
    q = q.double()
    return (q * torch.log(q / rho) + (1 - q) * torch.log((1 - q) / (1 - rho))).numpy()


def _judge_gaussian(calls: list[dict], results: list[dict]) -> None:
    from funml_lib.losses import gaussian_kl

    for i in range(2):
        c, res = calls[i], results[i]
        _common(c, res, c["label"])
        mu, logvar = c["args"]
        ref = gaussian_kl(mu.double(), logvar.double()).numpy()
        info = res["outs"][0]
        if info.get("type") == "Tensor" and info.get("shape") == []:
            raise _Fail(f"with {c['label']} it returned one number; return one KL per row, shape (N,)")
        a = _values(info, (mu.shape[0],), c["label"])
        if not _close(a, ref):
            hint = _ratio_hint(a, ref)
            if _close(a * mu.shape[1], ref):
                hint = "values are the mean over latent dimensions; sum them instead"
            elif i == 1 and abs(a[0] - 0.5) < 1e-4 and abs(a[1] - ref[1]) > 1e-3:
                hint = ("right for mu = 1 but wrong for variance 4: logvar is the log of the variance, "
                        "exp(logvar) the variance")
            raise _Fail(f"with {c['label']}: expected {ref[0]:.5f} in the first row, got {a[0]:.5f}"
                        + (f"; {hint}" if hint else ""))
    c, res = calls[2], results[2]
    _common(c, res, c["label"])
    mu, logvar = (t.double().clone().requires_grad_(True) for t in c["args"])
    (gaussian_kl(mu, logvar) * c["upstream"].double()).sum().backward()
    _grads(res, [mu.grad.numpy(), logvar.grad.numpy()], ["mu", "logvar"])
    _meta(results[3], (4,))


def _judge_mask(calls: list[dict], results: list[dict]) -> None:
    c, res = calls[0], results[0]
    _common(c, res, c["label"])
    x, f = c["args"]
    xs = x.double().numpy()
    first, second = (_values(info, tuple(x.shape), c["label"]) for info in res["outs"])
    for a in (first, second):
        kept, zero = np.isclose(a, xs, rtol=0, atol=1e-7), a == 0
        if not (kept | zero).all():
            raise _Fail("every pixel must be either 0 or exactly its old value (multiply by a 0/1 mask)")
    zero = first == 0
    if (zero == zero[0]).all():
        raise _Fail("every image got the same mask; draw one random number per pixel of every image")
    uniform_cols = float(((zero.all(0)) | (~zero).all(0)).mean())
    if uniform_cols > 0.5:
        raise _Fail("the same pixels are masked in every image; draw the mask independently per entry")
    share = float((first == 0).mean())
    n = first.size
    tol = max(6 * math.sqrt(f * (1 - f) / n), 0.005)
    if abs(share - (1 - f)) < tol and abs(f - 0.5) > 2 * tol:
        raise _Fail(f"{share:.1%} of the pixels are 0, expected {f:.1%}: fraction is the share of pixels "
                    "to remove, not to keep")
    if abs(share - f) > tol:
        raise _Fail(f"with fraction = {f} about {f:.1%} of the pixels should be 0, got {share:.1%}")
    if (zero == (second == 0)).all():
        raise _Fail("two calls masked the same pixels; draw a fresh mask on every call (no seeding inside)")
    for i, want in ((1, np.ones((3, 784))), (2, np.zeros((3, 784)))):
        c, res = calls[i], results[i]
        _common(c, res, c["label"])
        if not np.array_equal(_values(res["outs"][0], (3, 784), c["label"]), want):
            raise _Fail(f"with {c['label']} expected {'x unchanged' if i == 1 else 'all zeros'}")
    _meta(results[3], (5, 784))


def _judge_reparam(calls: list[dict], results: list[dict]) -> None:
    c, res = calls[0], results[0]
    _common(c, res, c["label"])
    mu, logvar = (t.double().numpy() for t in c["args"])
    sigma = np.exp(logvar[0] / 2)
    z1, z2 = (_values(info, mu.shape, c["label"]) for info in res["outs"])
    eps = (z1 - mu) / sigma
    n = mu.shape[0]
    mean, std = eps.mean(0), eps.std(0)
    if np.allclose(z1, mu, atol=1e-6):
        raise _Fail("z has no noise at all; z must be a random sample around mu")
    zstd = z1.std(0)
    if np.allclose(zstd, sigma ** 2, rtol=0.05) and not np.allclose(sigma, 1, atol=0.2):
        raise _Fail("the spread of z is the variance exp(logvar); it must be sigma = exp(logvar / 2)")
    if np.allclose(z1.mean(0), 0, atol=6 / math.sqrt(n) * sigma.max()) and np.abs(mu[0]).max() > 0.5:
        raise _Fail("z is centred at 0, not at mu: add mu to the scaled noise")
    if not (np.abs(mean) < 6 / math.sqrt(n)).all() or not (np.abs(std - 1) < 0.06).all():
        raise _Fail(f"(z - mu) / sigma should have mean 0 and spread 1 in every dimension; got means "
                    f"{np.round(mean, 3).tolist()} and spreads {np.round(std, 3).tolist()} "
                    "(sigma = exp(logvar / 2), z = mu + sigma * eps)")
    within = float((np.abs(eps) < 1).mean())
    if abs(within - 0.6827) > 0.03:
        raise _Fail(f"{within:.1%} of the standardized noise lies within one sigma, a normal has 68.3%: "
                    "draw eps from a standard normal (torch.randn_like)")
    corr = np.corrcoef(eps.T)
    if (np.abs(corr - np.eye(corr.shape[0])) > 0.1).any():
        raise _Fail("the noise of different latent dimensions is correlated; draw one eps per entry")
    if np.allclose(z1, z2):
        raise _Fail("two calls returned the same z; draw fresh noise on every call (no seeding inside)")
    c, res = calls[1], results[1]
    _common(c, res, c["label"])
    a = _values(res["outs"][0], (1, 2), c["label"])
    if not np.allclose(a, [[1.0, -2.0]], atol=1e-5):
        raise _Fail(f"with logvar = -200 (sigma = e^-100) z must equal mu = [1, -2], got {a.round(4).tolist()}")
    c, res = calls[2], results[2]
    _common(c, res, c["label"])
    z = _values(res["outs"][0], tuple(c["args"][0].shape), c["label"])
    up = c["upstream"].double().numpy()
    # z = mu + exp(logvar / 2) eps: dz/dmu = 1, dz/dlogvar = (z - mu) / 2, with this call's own z
    _grads(res, [up, up * (z - c["args"][0].double().numpy()) / 2], ["mu", "logvar"])
    _meta(results[3], (4, 3))


_JUDGES = {"bernoulli_kl": _judge_bernoulli, "gaussian_kl": _judge_gaussian, "mask": _judge_mask,
           "reparameterize": _judge_reparam}


def judge(gid: str, calls: list[dict], reply: Any, points: float) -> tuple[float, str]:
    """(points, message) for one function exercise from the sandbox's reply for it."""
    kind, name = PROBES[gid]
    if not isinstance(reply, dict):
        return 0.0, "no result came back for this exercise"
    if reply.get("missing"):
        errors = reply.get("cell_errors") or []
        why = f" (the answer cell raised {errors[0]})" if errors else ""
        return 0.0, f"the answer cell does not define a function {name}{why}"
    results = reply.get("calls")
    if not isinstance(results, list) or len(results) != len(calls) or not all(
            isinstance(r, dict) and ("error" in r or isinstance(r.get("outs"), list)
                                     and len(r["outs"]) == c["repeat"]) for r, c in zip(results, calls)):
        return 0.0, "the reply for this exercise is malformed"
    try:
        _JUDGES[kind](calls, results)
    except _Fail as fail:
        return 0.0, f"{name}: {fail}"
    except Exception as err:  # a reply forged on the result pipe may hold anything (AttributeError...)
        return 0.0, f"{name}: the reply could not be checked ({type(err).__name__})"
    return float(points), f"{name}: all checks passed"
