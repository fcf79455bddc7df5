"""The course grader: verdicts decided outside the student's process (issue 22).

- `submission`: reads a submitted notebook without running it and restores its locked cells;
- `sandbox`: the one place where student code runs (a fresh, isolated, limited process);
- `numbers`: number answers, read with `ast`, never executed;
- `functions`: probes for function answers; references computed here, never in the sandbox;
- `job`: one submission in, `scores.json` and a normalized notebook out.
"""
