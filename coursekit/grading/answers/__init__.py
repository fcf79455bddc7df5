"""Reference values of the chapters' number answers, one module per chapter: `chNN.py`.

The grader imports `coursekit.grading.answers.chNN` for the notebook whose stem starts with `NN_`;
each module defines `NUMBERS = {tests_grade_id: {name: (reference, absolute_tolerance)}}`.
A chapter without a module has no number exercises. These files never reach a student.
"""
