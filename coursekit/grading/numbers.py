"""Number answers: `name = expression` lines read with `ast`, never executed.

An answer cell of a number exercise holds one assignment per line, e.g.

    kl_value = 0.5 * math.log(4 / 3)
    predicted_rank = 10

An expression may use number literals, + - * / // % **, parentheses, math.pi / math.e / math.tau,
the functions listed in FUNCTIONS (as `math.sqrt(2)`, after `import math as m` `m.sqrt(2)`, or after
`from math import sqrt` / `log as ln`, `sqrt(2)` / `ln(2)`; `abs` and `round` as built-ins),
and names assigned earlier in the same cell. Anything else (a call to another function, a string,
a bool, a comprehension, an attribute of anything but math) makes that one name's answer unreadable:
0 points for it, with a message. References live in coursekit/grading/answers/chNN.py (NUMBERS).
"""
from __future__ import annotations

import ast
import importlib
import math
import re
from pathlib import Path
from typing import Callable

CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}
FUNCTIONS: dict[str, Callable[..., float]] = {
    "sqrt": math.sqrt, "log": math.log, "exp": math.exp, "log2": math.log2, "log10": math.log10,
    "log1p": math.log1p, "expm1": math.expm1, "sin": math.sin, "cos": math.cos, "tan": math.tan,
    "atan": math.atan, "tanh": math.tanh, "erf": math.erf, "fabs": math.fabs, "abs": abs,
    "pow": math.pow, "round": round,
}
TWO_ARGS = ("log", "pow", "round")  # log(x, base), pow(x, y), round(x, ndigits)
BUILTINS = ("abs", "round")  # callable without math.
MAX_EXPONENT = 1024  # |b| in a ** b; larger powers of ints could take the grader's memory
MAX_MAGNITUDE = 1e300
MAX_SOURCE = 20_000


class Unreadable(ValueError):
    """An answer expression outside the allowed arithmetic; the message says what."""


def _clean(source: str) -> str:
    """IPython magics and shell lines become comments, so the rest still parses."""
    return "\n".join("# " + line if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())


class _Evaluator:
    def __init__(self) -> None:
        self.names: dict[str, float] = {}
        self.math_names: dict[str, str] = {}  # `from math import sqrt, log as ln`: {"sqrt": "sqrt", "ln": "log"}
        self.math_modules = {"math"}  # `import math as m`

    def number(self, node: ast.AST) -> float | int:
        value = self._eval(node)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Unreadable(f"not a number ({type(value).__name__})")
        if isinstance(value, int) and abs(value) > MAX_MAGNITUDE:
            raise Unreadable("a number larger than 1e300")
        if isinstance(value, float) and not math.isfinite(value):
            raise Unreadable("not a finite number")
        return value

    def _eval(self, node: ast.AST) -> float | int:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise Unreadable(f"{node.value!r} is not a number")
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = self.number(node.operand)
            return -value if isinstance(node.op, ast.USub) else +value
        if isinstance(node, ast.BinOp):
            return self._binop(node)
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in self.math_modules):
            if node.attr in CONSTANTS:
                return CONSTANTS[node.attr]
            raise Unreadable(f"math.{node.attr} is not one of the allowed constants (pi, e, tau)")
        if isinstance(node, ast.Name):
            if node.id in self.names:
                return self.names[node.id]
            if self.math_names.get(node.id) in CONSTANTS:
                return CONSTANTS[self.math_names[node.id]]
            raise Unreadable(f"the name {node.id!r} is not a number assigned above in this cell")
        if isinstance(node, ast.Call):
            return self._call(node)
        raise Unreadable(f"{type(node).__name__} expressions are not allowed; write a number or "
                         "arithmetic of numbers")

    def _binop(self, node: ast.BinOp) -> float | int:
        a, b = self.number(node.left), self.number(node.right)
        try:
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Mult):
                return a * b
            if isinstance(node.op, ast.Div):
                return a / b
            if isinstance(node.op, ast.FloorDiv):
                return a // b
            if isinstance(node.op, ast.Mod):
                return a % b
            if isinstance(node.op, ast.Pow):
                if abs(b) > MAX_EXPONENT:
                    raise Unreadable(f"an exponent larger than {MAX_EXPONENT}")
                if isinstance(a, int) and isinstance(b, int) and b > 0 and b * (abs(a).bit_length() - 1) > 1100:
                    # refuse before computing: (10**299)**1024 costs ~20 ms of the grader's own CPU,
                    # a thousand such lines 20 s; the result would be refused as larger than 1e300
                    raise Unreadable("a number larger than 1e300")
                result = a ** b
                if isinstance(result, complex):
                    raise Unreadable("a complex number (fractional power of a negative number)")
                return result
        except ZeroDivisionError:
            raise Unreadable("a division by zero") from None
        except OverflowError:
            raise Unreadable("a number too large for a float") from None
        raise Unreadable(f"the operator {type(node.op).__name__} is not allowed")

    def _call(self, node: ast.Call) -> float:
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in self.math_modules:
            name = func.attr
        elif isinstance(func, ast.Name) and func.id in self.math_names:
            name = self.math_names[func.id]
        elif isinstance(func, ast.Name) and func.id in BUILTINS:
            name = func.id
        else:
            raise Unreadable("only math functions may be called: " + ", ".join(sorted(FUNCTIONS)))
        if name not in FUNCTIONS:
            raise Unreadable(f"math.{name} is not one of the allowed functions")
        if node.keywords or not 1 <= len(node.args) <= 2 or name not in TWO_ARGS and len(node.args) != 1:
            raise Unreadable(f"{name}() takes one number (log, pow, round: two)")
        if name == "pow" and len(node.args) != 2:
            raise Unreadable("pow() takes two numbers")
        args = [self.number(a) for a in node.args]
        if name == "round" and len(args) == 2:
            if not float(args[1]).is_integer() or abs(args[1]) > 400:
                raise Unreadable("round(x, ndigits) needs a whole number of digits")
            args[1] = int(args[1])
        try:
            return FUNCTIONS[name](*args)
        except (ValueError, ZeroDivisionError):
            raise Unreadable(f"{name}{tuple(args)} is not defined (math domain error)") from None
        except OverflowError:
            raise Unreadable(f"{name}{tuple(args)} is too large") from None


def read_numbers(source: str) -> tuple[dict[str, float], dict[str, str]]:
    """(values, problems): every top-level `name = expr` of the cell, evaluated safely.

    problems maps a name (or '<cell>') to why it could not be read; a later assignment wins.
    """
    if not isinstance(source, str) or len(source) > MAX_SOURCE:
        return {}, {"<cell>": f"the answer cell is not text or longer than {MAX_SOURCE} characters"}
    try:
        tree = ast.parse(_clean(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        line = getattr(err, "lineno", None)
        return {}, {"<cell>": f"the answer cell is not valid Python (line {line}): "
                              f"{getattr(err, 'msg', err)}"}
    ev = _Evaluator()
    problems: dict[str, str] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom) and stmt.module == "math":
            ev.math_names.update((a.asname or a.name, a.name) for a in stmt.names)
            continue
        if isinstance(stmt, ast.Import):
            ev.math_modules.update(a.asname for a in stmt.names if a.name == "math" and a.asname)
            continue
        pairs: list[tuple[ast.AST, ast.AST]] = []
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            pairs = [(stmt.targets[0], stmt.value)]
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            pairs = [(stmt.target, stmt.value)]
        elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
            # `kl = 0.05 * log(0.25)` then `kl += 0.95 * log(0.95 / 0.8)`: the sum, as Python has it
            load = ast.Name(id=stmt.target.id, ctx=ast.Load())
            pairs = [(stmt.target, ast.BinOp(left=load, op=stmt.op, right=stmt.value))]
        if (pairs and isinstance(pairs[0][0], ast.Tuple) and isinstance(pairs[0][1], ast.Tuple)
                and len(pairs[0][0].elts) == len(pairs[0][1].elts)):
            pairs = list(zip(pairs[0][0].elts, pairs[0][1].elts))  # factor_on, factor_off = 0.25, 0.0099
        values: dict[str, float] = {}
        for target, value in pairs:  # a tuple's values all come from the names before it
            if not isinstance(target, ast.Name):
                continue  # imports, prints, comments: not answers
            try:
                values[target.id] = float(ev.number(value))
                problems.pop(target.id, None)
            except (Unreadable, RecursionError) as err:
                values.pop(target.id, None)
                ev.names.pop(target.id, None)
                problems[target.id] = (str(err) if isinstance(err, Unreadable)
                                       else "expression nested too deeply")
        ev.names.update(values)
    return ev.names, problems


def chapter_module(notebook: str | Path) -> str:
    """`coursekit.grading.answers.chNN` for a notebook whose stem starts with NN_ ('' when none)."""
    match = re.match(r"(\d{2})_", Path(notebook).name)
    return f"coursekit.grading.answers.ch{match.group(1)}" if match else ""


def chapter_numbers(notebook: str | Path) -> dict[str, dict[str, tuple[float, float]]]:
    """The chapter's NUMBERS table ({} when the chapter has no answers module).

    The example chapter's table (coursekit.example_chapter.NUMBERS, grade_ids "ex-demo-*", which no
    real chapter uses) is always included: tests write the example under any chapter number.
    """
    from coursekit.example_chapter import NUMBERS as example

    name = chapter_module(notebook)
    if not name:
        return dict(example)
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name == name:
            return dict(example)
        raise
    table = _checked(name, getattr(module, "NUMBERS", None))
    return {**example, **table}


def _checked(name: str, table: object) -> dict[str, dict[str, tuple[float, float]]]:
    if not isinstance(table, dict):
        raise ValueError(f"{name}: NUMBERS must be a dict {{tests_grade_id: {{name: (value, tol)}}}}")
    for gid, names in table.items():
        if not isinstance(names, dict) or not names:
            raise ValueError(f"{name}: NUMBERS[{gid!r}] must be a non-empty dict")
        for var, spec in names.items():
            ok = (isinstance(spec, tuple) and len(spec) == 2
                  and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                          for v in spec) and spec[1] >= 0)
            if not ok:
                raise ValueError(f"{name}: NUMBERS[{gid!r}][{var!r}] must be (finite value, tolerance >= 0)")
    return table


def grade_numbers(source: str | None, expected: dict[str, tuple[float, float]],
                  points: float) -> tuple[float, str]:
    """(points, message) for one tests cell: points split equally between the expected names."""
    if source is None:
        return 0.0, "the answer cell is missing"
    values, problems = read_numbers(source)
    share = points / len(expected)
    got, lines = 0.0, []
    for name, (ref, tol) in expected.items():
        if name not in values:
            why = problems.get(name) or problems.get("<cell>") or "not assigned in the answer cell"
            lines.append(f"{name}: {why}")
        elif abs(values[name] - ref) <= tol + 1e-9 * abs(ref):
            got += share
            lines.append(f"{name} = {values[name]:.6g}: correct")
        else:
            lines.append(f"{name} = {values[name]:.6g}: not within {tol:g} of the expected value")
    return round(got, 6), "; ".join(lines)
