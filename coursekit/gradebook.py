"""The course's gradebook without a GUI: scores per submission, hand-graded points, timing of autograde.

    python -m coursekit.course scores course
    python -m coursekit.course grade course CHAPTER STUDENT GRADE_ID POINTS
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from coursekit.safe_io import NotebookError

COURSE_ID = "funml-autoencoders"


def _db_url(course_dir: str | Path) -> str:
    return f"sqlite:///{Path(course_dir).resolve() / 'gradebook.db'}"


@dataclass(frozen=True)
class Timing:
    """How long an autograde took: wall-clock seconds, and CPU seconds of nbgrader and its kernels.

    On a shared machine the wall clock measures the neighbours too; the CPU time is what the grading
    itself needs (on an idle machine with two cores the wall clock is at most about this).
    """

    wall: float
    cpu: float


@dataclass(frozen=True)
class Score:
    assignment: str
    student: str
    auto: float          # points from autograder-tests cells
    auto_max: float
    manual_max: float    # points graded by hand (answer cells)
    total: float         # everything scored so far (hand-graded cells count once graded)
    needs_manual: int    # answer cells still waiting for a person


def read_scores(course_dir: str | Path) -> list[Score]:
    """Every submission's scores from the course's gradebook."""
    from nbgrader.api import Gradebook

    rows = []
    with Gradebook(_db_url(course_dir), COURSE_ID) as gb:
        for assignment in gb.assignments:
            for sub in assignment.submissions:
                auto = auto_max = manual_max = total = 0.0
                pending = 0
                for nb in sub.notebooks:
                    solution = {c.name for c in nb.notebook.solution_cells}
                    for g in nb.grades:
                        total += g.score or 0.0
                        if g.name in solution:
                            manual_max += g.max_score
                            pending += bool(g.needs_manual_grade)
                        else:
                            auto += g.auto_score or 0.0
                            auto_max += g.max_score
                rows.append(Score(assignment.name, sub.student.id, auto, auto_max, manual_max, total, pending))
    return sorted(rows, key=lambda r: (r.assignment, r.student))


def set_manual_score(course_dir: str | Path, assignment: str, student: str, grade_id: str,
                     points: float) -> None:
    """Record the points a person gave one hand-graded answer (what formgrader's GUI does)."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(_db_url(course_dir), COURSE_ID) as gb:
        try:
            grade = gb.find_grade(grade_id, assignment, assignment, student)
        except MissingEntry:
            raise NotebookError(f"no grade {grade_id} for student {student} in {assignment}; autograde first") from None
        if not 0 <= points <= grade.max_score:
            raise NotebookError(f"{grade_id}: points must be in [0, {grade.max_score:g}], got {points:g}")
        grade.manual_score = points
        grade.needs_manual_grade = False  # as formgrader does when a person saves a score
        gb.db.commit()


def format_scores(rows: list[Score]) -> str:
    lines = [f"{'assignment':32} {'student':16} {'auto':>9} {'by hand':>8} {'total':>6}  waiting"]
    for r in rows:
        lines.append(f"{r.assignment:32} {r.student:16} {r.auto:4g}/{r.auto_max:<4g} {r.manual_max:8g} "
                     f"{r.total:6g}  {r.needs_manual} answer cell(s)")
    return "\n".join(lines)
