# Two commands do everything on a fresh machine: `make book` and `make test`.
# Targets are idempotent: the virtualenv is rebuilt only when pyproject.toml changes.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS := book,test,site,homework
SUDO   := $(shell test "$$(id -u)" -eq 0 || echo sudo)

export PYTHONHASHSEED := 0

.PHONY: venv test book bench homework check-site clean assets chromium

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

# FUNML_STUDENT_RUNS=one: also execute one real student notebook up to its first exercise.
test: venv
	FUNML_STUDENT_RUNS=one $(BIN)/python -m pytest tests

# FUNML_STATIC=1: explorers draw their static figures only (a built page cannot run callbacks).
book: venv assets
	FUNML_STATIC=1 $(BIN)/jupyter-book build . -W -n --keep-going
	@echo "HTML: $(CURDIR)/_build/html/index.html"

bench: venv
	$(BIN)/python benchmarks/train_throughput.py

homework: venv
	$(BIN)/python -m coursekit.homework book homework

# After the build: every page in Chromium, then the launch-button tests that need the built HTML.
check-site: venv chromium
	$(BIN)/python -m coursekit.check_site _build/html
	FUNML_REQUIRE_HTML=1 $(BIN)/python -m pytest -q tests/test_colab.py -k html

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

clean:
	rm -rf _build homework .pytest_cache node_modules book/_static/vendor
