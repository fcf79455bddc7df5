"""nbgrader's Execute step replaced: the course grader's verdicts go into nbgrader's gradebook.

nbgrader stays the course manager; it never runs student code. The generated nbgrader_config.py
puts `BridgeVerdicts` where nbgrader's autograde has `Execute`. For each notebook it reads what the
grading job (coursekit.grading.job, in its sandbox) left for that submission in
`<results_dir>/<chapter>/<student>/`, `scores.json`:

    {"tests": {grade_id: {"points", "max", "message"}}, "ok", "reason", "notes", ...}

and gives every autograder-tests cell exactly the grader's points. The notebook nbgrader reads
is the job's `normalized.ipynb` (the submission mapped onto the release, with the outputs of the
sandboxed display run), staged by coursekit.course; the config keeps those outputs (its sanitize
step has no ClearOutput). nbgrader reads a code grade cell's points from its outputs
(nbgrader.utils.determine_grade): an `execute_result` whose text is a
number is partial credit, an error or any stderr output is 0. So each tests cell gets the display
run's outputs made harmless (errors and stderr become plain text, results become displays), one line
from the grader, and as the last output the points as an `execute_result`; nbgrader's SaveAutoGrades
then stores them as auto_score. No verdict file means no grade: the notebook fails with a message
that says how to grade (nbgrader reports it and goes on with the next student).
"""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from traitlets import Unicode

from nbgrader.preprocessors import NbGraderPreprocessor

GRADER_PREFIX = "Course grader"


def _nbgrader(cell: NotebookNode) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_tests_cell(cell: NotebookNode) -> bool:
    meta = _nbgrader(cell)
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def harmless_outputs(outputs: list) -> list:
    """Display outputs that nbgrader cannot read as a verdict: no error, no stderr, no result."""
    safe = []
    for out in outputs or []:
        kind = out.get("output_type")
        if kind == "error":
            text = f"{out.get('ename', 'Error')}: {out.get('evalue', '')}\n"
            safe.append(nbformat.v4.new_output("stream", name="stdout", text=text))
        elif kind == "stream":
            safe.append(nbformat.v4.new_output("stream", name="stdout", text=out.get("text", "")))
        elif kind == "execute_result":
            safe.append(nbformat.v4.new_output("display_data", data=out.get("data", {}),
                                               metadata=out.get("metadata", {})))
        elif kind == "display_data":
            safe.append(out)
    return safe


def verdict_outputs(points: float, max_points: float, message: str, display: list) -> list:
    """Outputs of a tests cell: the display run's (made harmless), the grader's line, the points."""
    points = min(max(float(points), 0.0), float(max_points))
    line = f"{GRADER_PREFIX}: {points:g}/{float(max_points):g}. {message}".rstrip() + "\n"
    return [*harmless_outputs(display),
            nbformat.v4.new_output("stream", name="stdout", text=line),
            nbformat.v4.new_output("execute_result", data={"text/plain": f"{points:g}"},
                                   execution_count=None)]


def load_verdict(results_dir: str | Path, chapter: str, student: str) -> dict:
    """The scores.json of one submission; FileNotFoundError says how to produce it."""
    scores_file = Path(results_dir) / chapter / student / "scores.json"
    if not scores_file.is_file():
        raise FileNotFoundError(
            f"no grader verdict {scores_file} for {student}/{chapter}: grade with "
            "`python -m coursekit.course autograde <course>` (nbgrader alone runs no student code)")
    scores = json.loads(scores_file.read_text(encoding="utf-8"))
    if not isinstance(scores, dict):
        raise ValueError(f"{scores_file}: not a grader verdict (a JSON object)")
    return scores


class BridgeVerdicts(NbGraderPreprocessor):
    """Sets tests cells' outputs to the course grader's verdict (see the module docstring)."""

    results_dir = Unicode("", help="folder with <chapter>/<student>/scores.json from the grading jobs"
                          ).tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        info = resources["nbgrader"]
        chapter, student = info["assignment"], info["student"]
        scores = load_verdict(self.results_dir, chapter, student)
        tests = scores.get("tests") or {}
        reason = scores.get("reason") or ""
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            if not is_tests_cell(cell):  # outputs of the sandboxed display run, kept for the reader
                cell.outputs = harmless_outputs(cell.get("outputs", []))
                continue
            gid = _nbgrader(cell).get("grade_id")
            max_points = float(_nbgrader(cell).get("points", 0))
            verdict = tests.get(gid)
            if isinstance(verdict, dict):
                points, message = float(verdict.get("points", 0) or 0), str(verdict.get("message", ""))
            else:
                points = 0.0
                message = (f"not graded: {reason}" if reason else
                           "not graded: the grader has no verdict for this exercise")
                self.log.warning("%s/%s: no verdict for %s (%s)", student, chapter, gid,
                                 reason or "missing in scores.json")
            cell.outputs = verdict_outputs(points, max_points, message, cell.get("outputs", []))
            cell.execution_count = None
        return nb, resources


def autograde_preprocessors() -> list:
    """nbgrader's autograde preprocessors with Execute replaced by BridgeVerdicts."""
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute

    default = Autograde.class_traits()["autograde_preprocessors"].default()
    return [BridgeVerdicts if p is Execute else p for p in default]


def sanitize_preprocessors() -> list:
    """nbgrader's sanitize step without ClearOutput: the staged notebook's outputs come from the
    sandboxed display run (never from the student's file), and the bridge makes them harmless."""
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import ClearOutput

    default = Autograde.class_traits()["sanitize_preprocessors"].default()
    return [p for p in default if p is not ClearOutput]
