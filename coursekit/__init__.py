"""Course tooling: student versions and the nbgrader course, the Colab set-up cell, the site check.

Nothing here is imported by a chapter; students import only `funml_lib`.
"""
