# Two commands do everything on a fresh machine: `make book` and `make test`.
# Targets are idempotent: the virtualenv is rebuilt only when pyproject.toml changes.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS := book,test,site,homework,frontend
SUDO   := $(shell test "$$(id -u)" -eq 0 || echo sudo)

export PYTHONHASHSEED := 0
# The chapters train small models: many small ops, which one torch thread per process runs faster
# than two on a 2-core machine (two threads wait for each other's time slices). Results are the
# same bit for bit. Override with `make book NB_THREADS=2`.
NB_THREADS ?= 1

.PHONY: venv test book chapter bench bench-rebuild homework check-site clean assets chromium gpu-check

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

# FUNML_STUDENT_RUNS=one: also execute one real student notebook up to its first exercise.
test: venv
	OMP_NUM_THREADS=$(NB_THREADS) FUNML_STUDENT_RUNS=one $(BIN)/python -m pytest --durations=12 tests

# Explorers precompute their frames; the executed notebooks keep the widget state, so the sliders
# work on the built pages without a kernel (FUNML_STATIC=1 would leave only the static figures).
# CI=1: no progress bars in the pages (funml_lib.train draws none under CI, as in every CI log).
# A chapter is executed again only when its run key changed (coursekit/build_cache.py, which runs
# jupyter-book build between computing the keys and storing them): a prose
# edit rebuilds in seconds, never from stale outputs. FORCE=1 executes every chapter.
BOOK_ENV := env -u FUNML_STATIC CI=1 FUNML_CLAIMS=strict OMP_NUM_THREADS=$(NB_THREADS)
# EDITION=term: the term edition for a graded class (no solution, answer code or hidden test; launch
# buttons on the branch of the student notebooks), built from the full build's executed notebooks into
# _build/term/html without executing anything again (coursekit/edition.py). EDITION=full is the default.
EDITION ?= full
ifneq ($(EDITION),term)
book: venv assets
	@test "$(EDITION)" = full || { echo "EDITION must be full or term, got '$(EDITION)'"; exit 2; }
	$(if $(FORCE),$(BIN)/python -m coursekit.build_cache clear)
	$(BOOK_ENV) $(BIN)/python -m coursekit.build_cache build -- -W -n --keep-going
	@echo "HTML: $(CURDIR)/_build/html/index.html"
else
book: book-term
endif

# The full build, run first when a page or the configuration is newer than the full site's search
# index, which every full build rewrites (coursekit.edition also refuses executed notebooks whose
# cells differ from the chapters').
_build/html/searchindex.js: $(wildcard book/*.ipynb book/*.md book/*.bib) _config.yml _toc.yml
	$(MAKE) book EDITION=full

.PHONY: book-term publish-term check-site-term
book-term: venv _build/html/searchindex.js
	$(BIN)/python -m coursekit.edition build
	@echo "HTML (term edition): $(CURDIR)/_build/term/html/index.html"

# The student notebooks onto the local branch `term` (what the term edition's buttons open); push it.
publish-term: venv
	$(BIN)/python -m coursekit.edition publish

# One chapter for an author at work, e.g. `make chapter NB=02`: executes it when its run key changed
# and builds that page alone into _build/chapter/ (the whole book stays as it was).
chapter: venv assets
	@test -n "$(NB)" || { echo "usage: make chapter NB=02 (the chapter's number)"; exit 2; }
	$(BOOK_ENV) $(BIN)/python -m coursekit.build_cache prepare
	$(BOOK_ENV) $(BIN)/python -m coursekit.build_cache chapter $(NB)

# Every chapter again at its defaults with seed 1, claims strict, in the environment's data regime
# (CI runs it without FUNML_DATA: the offline digits; `make book` covers seed 0 with the real test split).
.PHONY: claims
claims: venv
	OMP_NUM_THREADS=$(NB_THREADS) FUNML_CLAIMS_RUN=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_claims.py

bench: venv
	$(BIN)/python benchmarks/train_throughput.py

# Cold `make book FORCE=1` against `make book` after a prose-only edit, in one run; prints the ratio.
bench-rebuild: venv assets
	$(BIN)/python benchmarks/rebuild.py

# The live views' latency in headless Chromium on the built book (input to screen, median and max per
# view, ratio to the 50 ms budget and to a frame explorer's swap on the same page). Run `make book` first.
.PHONY: bench-live
bench-live: venv
	$(BIN)/python benchmarks/live_latency.py _build/html

# On a CUDA machine: the cuda-marked tests, chapters 02 and 05 with device=cuda, the benchmark; one summary.
# Fails at once (exit 2) without a CUDA device. Dry run on a CPU: .venv/bin/python -m coursekit.gpu_check --device cpu --tiny
# Offline GPU box whose python3 already has torch, pytest, papermill: make gpu-check GPU_PYTHON=python3
GPU_PYTHON ?= $(BIN)/python
gpu-check: $(if $(filter $(BIN)/python,$(GPU_PYTHON)),venv)
	$(GPU_PYTHON) -m coursekit.gpu_check

homework: venv
	$(BIN)/python -m coursekit.homework book homework

# nbgrader course in course/ (source/, release/, gradebook.db) from every chapter with grading metadata;
# nbgrader runs from .venv with FUNML_GRADING=1 (small settings). Submissions go to
# course/submitted/<student>/<chapter>/<chapter>.ipynb; `make autograde` grades them and prints scores.
.PHONY: course autograde
course: venv
	$(BIN)/python -m coursekit.course book course

# JOBS: grading jobs at a time (each a sandboxed process); the gradebook has one writer anyway.
JOBS ?= 1
autograde: venv
	$(BIN)/python -m coursekit.course autograde course --jobs $(JOBS)

# After the build: every page in Chromium, then the launch-button tests that need the built HTML.
check-site: venv chromium assets
	$(BIN)/python -m coursekit.check_site _build/html
	FUNML_REQUIRE_HTML=1 $(BIN)/python -m pytest -q tests/test_colab.py -k html

# The term edition's site in Chromium, and every file of it and of the published branch searched for
# the chapters' solutions, answer code and hidden tests (NO_BROWSER=1: only the leak scan).
check-site-term: venv chromium assets
	$(BIN)/python -m coursekit.check_site _build/term/html --edition term $(if $(NO_BROWSER),--no-browser)

# MathJax, RequireJS and the widget manager are served from the site itself (offline readers, offline CI).
VENDOR_STAMP := book/_static/vendor/.installed
assets: $(VENDOR_STAMP)
$(VENDOR_STAMP): package.json package-lock.json
	command -v npm >/dev/null || { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends nodejs npm; }
	npm ci --ignore-scripts --no-audit --no-fund
	npm run --silent vendor
	touch $@

# The browser check drives Debian's Chromium (never a downloaded browser).
chromium:
	test -x /usr/bin/chromium || { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium chromium-driver; }

# Oldest supported versions (pyproject.toml's lower bounds: ipywidgets 7.7.1, IPython 7.34, numpy 1.26,
# ...) in .venv-oldest, rebuilt when pyproject.toml or coursekit/oldest.py change (torch linked from
# .venv): every chapter at its tiny test parameters with live explorers, tests/test_widgets.py, and
# the explorer in the classic Notebook 6 in Chromium.
OLDEST := .venv-oldest
OLDEST_STAMP := $(OLDEST)/.installed
.PHONY: oldest frontend
$(OLDEST_STAMP): pyproject.toml coursekit/oldest.py | venv
	rm -rf $(OLDEST)
	$(BIN)/python -m coursekit.oldest build $(OLDEST)
	touch $@

oldest: $(OLDEST_STAMP) chromium
	env -u FUNML_STATIC OMP_NUM_THREADS=$(NB_THREADS) $(OLDEST)/bin/python -m coursekit.oldest run
	FUNML_FRONTEND=1 OMP_NUM_THREADS=$(NB_THREADS) $(OLDEST)/bin/python -m pytest -q -p no:cacheprovider tests/test_frontend.py

# An explorer in JupyterLab 4 with ipywidgets 8 (this environment), in Chromium.
frontend: venv chromium
	FUNML_FRONTEND=1 OMP_NUM_THREADS=$(NB_THREADS) $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_frontend.py

clean:
	rm -rf _build homework .pytest_cache node_modules book/_static/vendor
