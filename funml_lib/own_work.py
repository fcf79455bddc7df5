"""`check_own_work`: the hidden test that a student's function is their own, not the library's.

    from funml_lib.self_checks import check_own_work   # the name students and tests import
    check_own_work(kl_divergence, kl_sparsity, 0.05, torch.rand(8))

A self-check compares the student's values with the library's reference, so a function that simply
returns the reference's result passes it. This check fails (`CheckFailed`) when the student's function

- is the reference itself, under any name (`kl_divergence = kl_sparsity`), or a copy of its code;
- is a `functools.partial` of it, or a wrapper that says so (`functools.wraps` sets `__wrapped__`);
- calls it when run on the example arguments, directly or through other code, however it got hold of
  it (a module attribute, an import inside the function, a closure, a default argument): during that
  one call the reference, and the private helpers of funml_lib that compute its result, raise.

It passes an honest implementation, printing one line. Like the other checks it leaves the global
random state untouched and passes a homework stub's NotImplementedError through.
"""
from __future__ import annotations

import functools
import sys
import types
from typing import Any, Callable, Iterator

import torch

SENTINEL = "funml_lib.check_own_work: the library's reference was called"
_HITS = "_FUNML_OWN_WORK_HITS"  # a list put into the reference's module globals during the call
_RAISER_SOURCE = f"""
def _reference_called(*args, **kwargs):
    {_HITS}.append(1)
    raise RuntimeError({SENTINEL!r})
"""


def _fail(message: str) -> None:
    from funml_lib.self_checks import CheckFailed  # lazily: self_checks re-exports this module

    raise CheckFailed(f"check_own_work: {message}")


def _name(fn: object) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def _wrapped_chain(fn: object) -> Iterator[tuple[str, object]]:
    """(how, object) for fn and everything it wraps: partial.func, __wrapped__, a bound method's function."""
    seen: set[int] = set()
    how = "is"
    while fn is not None and id(fn) not in seen:
        seen.add(id(fn))
        yield how, fn
        if isinstance(fn, (functools.partial, functools.partialmethod)):
            how, fn = "is a functools.partial of", fn.func
        elif isinstance(fn, types.MethodType):
            how, fn = "is a method bound to", fn.__func__
        elif getattr(fn, "__wrapped__", None) is not None:
            how, fn = "wraps", fn.__wrapped__
        else:
            fn = None


def _helpers(reference: Callable[..., Any]) -> list[types.FunctionType]:
    """The reference and the private funml_lib functions it calls (transitively): what computes its value.

    Argument checks (`_check_*`, funml_lib._validate) are left alone: other library functions an honest
    answer may use share them.
    """
    found: list[types.FunctionType] = []
    todo = [reference]
    while todo:
        fn = todo.pop()
        if not isinstance(fn, types.FunctionType) or any(fn is f for f in found):
            continue
        found.append(fn)
        for name in fn.__code__.co_names:
            obj = fn.__globals__.get(name)
            if (isinstance(obj, types.FunctionType) and name.startswith("_") and not name.startswith("_check")
                    and (obj.__module__ or "").startswith("funml_lib") and obj.__module__ != "funml_lib._validate"):
                todo.append(obj)
    return found


class _Patched:
    """Context: every way to reach the reference (and its private helpers) raises and is counted."""

    def __init__(self, reference: Callable[..., Any], student_fn: object) -> None:
        self.reference, self.student_fn = reference, student_fn
        self.hits: list[int] = []
        self._undo: list[Callable[[], None]] = []

    def _raiser(self) -> Callable[..., Any]:
        hits = self.hits

        def reference_called(*args: Any, **kwargs: Any) -> Any:
            hits.append(1)
            raise RuntimeError(SENTINEL)

        return reference_called

    def _setattr(self, owner: Any, name: str, value: Any) -> None:
        old = getattr(owner, name)
        setattr(owner, name, value)
        self._undo.append(lambda: setattr(owner, name, old))

    def __enter__(self) -> "_Patched":
        try:
            self._patch()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _patch(self) -> None:
        targets = _helpers(self.reference) or [self.reference]
        if not any(t is self.reference for t in targets):
            targets.append(self.reference)
        raiser = self._raiser()
        # 1. names: every funml_lib module attribute, and the student's globals, closure and defaults
        namespaces = [m for n, m in list(sys.modules.items())
                      if m is not None and (n == "funml_lib" or n.startswith("funml_lib."))]
        for module in namespaces:
            for name, value in list(vars(module).items()):
                if any(value is t for t in targets):
                    self._setattr(module, name, raiser)
        student = self.student_fn
        for _, fn in _wrapped_chain(student):
            fn = getattr(fn, "__call__", fn) if not isinstance(fn, types.FunctionType) else fn
            glob = getattr(fn, "__globals__", None)
            if isinstance(glob, dict):
                for name, value in list(glob.items()):
                    if any(value is t for t in targets):
                        old = value
                        glob[name] = raiser
                        self._undo.append(lambda g=glob, n=name, o=old: g.__setitem__(n, o))
            for cell in getattr(fn, "__closure__", None) or ():
                try:
                    value = cell.cell_contents
                except ValueError:  # an empty cell
                    continue
                if any(value is t for t in targets):
                    cell.cell_contents = raiser
                    self._undo.append(lambda c=cell, o=value: setattr(c, "cell_contents", o))
        # 2. the function objects themselves (reached by any other route): their code raises
        code = compile(_RAISER_SOURCE, "<funml_lib.check_own_work>", "exec")
        raiser_code = next(c for c in code.co_consts if isinstance(c, types.CodeType))
        for fn in targets:
            if not isinstance(fn, types.FunctionType) or fn.__closure__:
                continue  # a builtin or a closure: the names above are all we can patch
            glob = fn.__globals__
            if _HITS not in glob:
                glob[_HITS] = self.hits
                self._undo.append(lambda g=glob: g.pop(_HITS, None))
            old = (fn.__code__, fn.__defaults__, fn.__kwdefaults__)
            fn.__defaults__, fn.__kwdefaults__ = None, None
            fn.__code__ = raiser_code.replace(co_name=fn.__code__.co_name)
            self._undo.append(lambda f=fn, o=old: _restore_code(f, o))

    def __exit__(self, *exc: object) -> None:
        while self._undo:
            self._undo.pop()()


def _restore_code(fn: types.FunctionType, old: tuple) -> None:
    fn.__code__, fn.__defaults__, fn.__kwdefaults__ = old


def _reference_in_chain(err: BaseException | None) -> bool:
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, RuntimeError) and err.args == (SENTINEL,):
            return True
        err = err.__cause__ or err.__context__
    return False


def check_own_work(student_fn: Callable[..., Any], reference_fn: Callable[..., Any],
                   *example_args: Any) -> None:
    """Fail when `student_fn` is, aliases, wraps or calls `reference_fn` (the library's answer).

    example_args: arguments for one call of `student_fn`, e.g. `0.05, torch.rand(8)`; during that call
    the reference raises wherever it is reachable. Passes (one printed line) for an own implementation.
    """
    if not callable(student_fn):
        raise TypeError(f"student_fn must be your function (a callable), got {type(student_fn).__name__}")
    if not callable(reference_fn):
        raise TypeError(f"reference_fn must be the library function, got {type(reference_fn).__name__}")
    ref = f"funml_lib's {_name(reference_fn)}"
    who = "your function" + ("" if _name(student_fn) in (_name(reference_fn), "<lambda>")
                             else f" {_name(student_fn)}")
    ref_code = getattr(reference_fn, "__code__", None)
    for how, fn in _wrapped_chain(student_fn):
        if fn is reference_fn:
            what = "itself, under another name" if how == "is" else ""
            _fail(f"{who} {how} {ref} {what}".rstrip() + "; write the computation yourself")
        if ref_code is not None and getattr(fn, "__code__", None) is ref_code:
            _fail(f"{who} is a copy of {ref}; write the computation yourself")
    with torch.random.fork_rng(devices=[]):
        try:
            with _Patched(reference_fn, student_fn) as patch:
                try:
                    student_fn(*example_args)
                    error = None
                except NotImplementedError:
                    raise
                except Exception as err:  # reported below, once the library is restored
                    error = err
        except NotImplementedError:
            raise
    if patch.hits or _reference_in_chain(error):
        _fail(f"{who} calls {ref} (directly or through other code); compute the result yourself "
              "from torch operations")
    if error is not None:
        _fail(f"{who} raised {type(error).__name__} ({error}) when called with the example arguments")
    print(f"check_own_work: {who} computes its result without {ref}.")
