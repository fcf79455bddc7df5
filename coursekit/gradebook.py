"""The course's gradebook without a GUI: points given, what still waits, hand grades that survive.

    python -m coursekit.course scores course
    python -m coursekit.course grade course CHAPTER STUDENT GRADE_ID POINTS

nbgrader's SQLite gradebook is written by one process at a time (coursekit.course runs nbgrader
once per chapter, after the parallel grading jobs). Re-running autograde makes nbgrader mark every
hand-graded cell "needs manual grade" again; `save_hand_grades` / `restore_hand_grades` keep a
person's points, comments and "done" state across the run, unless the submitted file changed.
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
    """How long an autograde took: wall-clock seconds, and CPU seconds of the grading jobs.

    On a shared machine the wall clock measures the neighbours too; the CPU time is what the grading
    itself needs.
    """

    wall: float
    cpu: float


@dataclass(frozen=True)
class Score:
    """One submission: points given and possible, automatic and by hand, and what still waits."""

    assignment: str
    student: str
    auto: float          # points of the autograder-tests cells (the course grader's verdicts)
    auto_max: float
    manual: float        # points a person gave the hand-graded answer cells (0 for "no response")
    manual_max: float
    total: float         # auto + manual
    needs_manual: int    # answer cells still waiting for a person

    @property
    def total_max(self) -> float:
        return self.auto_max + self.manual_max


def read_scores(course_dir: str | Path) -> list[Score]:
    """Every submission's scores from the course's gradebook."""
    from nbgrader.api import Gradebook

    rows = []
    with Gradebook(_db_url(course_dir), COURSE_ID) as gb:
        for assignment in gb.assignments:
            for sub in assignment.submissions:
                auto = auto_max = manual = manual_max = 0.0
                pending = 0
                for nb in sub.notebooks:
                    solution = {c.name for c in nb.notebook.solution_cells}
                    for g in nb.grades:
                        if g.name in solution:
                            manual_max += g.max_score
                            if g.needs_manual_grade:
                                pending += 1
                            # points kept for review (the file changed since) still count, as in
                            # nbgrader's export: g.score is the manual score when a person gave one
                            manual += g.score or 0.0
                        else:
                            auto += g.score or 0.0
                            auto_max += g.max_score
                rows.append(Score(assignment.name, sub.student.id, auto, auto_max, manual, manual_max,
                                  auto + manual, pending))
    return sorted(rows, key=lambda r: (r.assignment, r.student))


def _valid(kind: str, value: str, valid: list[str]) -> NotebookError:
    shown = ", ".join(valid) if valid else "none yet (autograde first)"
    return NotebookError(f"no {kind} {value!r}; valid {kind}s: {shown}")


def set_manual_score(course_dir: str | Path, assignment: str, student: str, grade_id: str,
                     points: float) -> None:
    """Record the points a person gave one graded cell (what formgrader's GUI does).

    A mistyped chapter, student or grade id is refused with the list of valid ones.
    """
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(_db_url(course_dir), COURSE_ID) as gb:
        chapters = sorted(a.name for a in gb.assignments)
        if assignment not in chapters:
            raise _valid("chapter", assignment, chapters)
        chapter = gb.find_assignment(assignment)
        students = sorted(s.student.id for s in chapter.submissions)
        if student not in students:
            raise NotebookError(f"no graded submission of {assignment} by {student!r}; students with "
                                f"one: {', '.join(students) or 'none yet (autograde first)'}")
        ids = sorted(c.name for nb in chapter.notebooks for c in nb.grade_cells)
        if grade_id not in ids:
            hand = {c.name for nb in chapter.notebooks for c in nb.solution_cells}
            listed = [f"{i} (by hand)" if i in hand else f"{i} (autograded; overrides the grader)" for i in ids]
            raise NotebookError(f"no graded cell {grade_id!r} in {assignment}; valid grade ids: "
                                + ", ".join(listed))
        try:
            grade = gb.find_grade(grade_id, assignment, assignment, student)
        except MissingEntry:
            raise NotebookError(f"no grade {grade_id} for {student} in {assignment}: autograde "
                                f"{assignment} first") from None
        if not 0 <= points <= grade.max_score:
            raise NotebookError(f"{grade_id}: points must be in [0, {grade.max_score:g}], got {points:g}")
        grade.manual_score = points
        grade.needs_manual_grade = False  # as formgrader does when a person saves a score
        gb.db.commit()


def save_hand_grades(course_dir: str | Path, assignment: str) -> dict:
    """What a person recorded for the submissions of one chapter: {student: {grade_id: ...}}."""
    from nbgrader.api import Gradebook, MissingEntry

    saved: dict = {}
    with Gradebook(_db_url(course_dir), COURSE_ID) as gb:
        try:
            chapter = gb.find_assignment(assignment)
        except MissingEntry:
            return saved
        for sub in chapter.submissions:
            for nb in sub.notebooks:
                for g in nb.grades:
                    if g.manual_score is not None:
                        saved.setdefault(sub.student.id, {})[g.name] = {
                            "manual_score": g.manual_score, "needs_manual_grade": g.needs_manual_grade,
                            "extra_credit": g.extra_credit}
                for c in nb.comments:
                    if c.manual_comment:
                        entry = saved.setdefault(sub.student.id, {}).setdefault(c.name, {})
                        entry["manual_comment"] = c.manual_comment
    return saved


def restore_hand_grades(course_dir: str | Path, assignment: str, saved: dict,
                        changed: set[str]) -> list[str]:
    """Put back what `save_hand_grades` found; returns one note per student whose file changed.

    changed: students whose submitted file differs from the one graded before; their hand grades
    are kept but marked "needs manual grade", so a person looks at the new answer.
    """
    from nbgrader.api import Gradebook, MissingEntry

    notes = []
    with Gradebook(_db_url(course_dir), COURSE_ID) as gb:
        for student, cells in saved.items():
            review = []
            for grade_id, entry in cells.items():
                try:
                    if "manual_score" in entry:
                        g = gb.find_grade(grade_id, assignment, assignment, student)
                        g.manual_score = entry["manual_score"]
                        g.extra_credit = entry["extra_credit"]
                        g.needs_manual_grade = True if student in changed else entry["needs_manual_grade"]
                        if student in changed:
                            review.append(grade_id)
                    if "manual_comment" in entry:
                        c = gb.find_comment(grade_id, assignment, assignment, student)
                        c.manual_comment = entry["manual_comment"]
                except MissingEntry:  # the cell left the chapter since: nothing to restore
                    continue
            if review:
                notes.append(f"{student}/{assignment}: the submission changed since it was graded by "
                             f"hand; points of {', '.join(sorted(review))} kept, marked for review")
        gb.db.commit()
    return notes


def format_scores(rows: list[Score]) -> str:
    """The score table: points given / possible, automatic and by hand, and the cells still waiting."""
    lines = [f"{'assignment':30} {'student':14} {'auto':>9} {'by hand':>9} {'total':>9}  waiting for you"]
    for r in rows:
        waiting = f"{r.needs_manual} answer cell(s)" if r.needs_manual else "-"
        lines.append(f"{r.assignment:30} {r.student:14} {r.auto:>4g}/{r.auto_max:<4g} "
                     f"{r.manual:>4g}/{r.manual_max:<4g} {r.total:>4g}/{r.total_max:<4g}  {waiting}")
    return "\n".join(lines)
