# torchdrill: `make grade` grades exercises/ (or SUBMISSION=path); `make test` runs the kit's
# tests; `make nbgrader ARGS="autograde softmax"` runs nbgrader on release/nbgrader (or
# COURSE=dir) with the kit's Python, nothing to activate; `make gradescope [TOPICS=softmax]`
# writes Gradescope's autograder.zip; `make notebook TOPIC=softmax` opens an exercise in
# Jupyter; `make export LMS=canvas ROSTER=roster.csv` writes the LMS's grade file. Each creates
# .venv on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUBMISSION ?= exercises

.PHONY: setup grade grade-class notebook export test lint bench sync data release nbgrader gradescope \
	clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) grader/python_check.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing the kit into $(VENV): torch with its CUDA libraries, about 6 GB and" \
		"a few minutes the first time."
	$(PY) -m pip install --disable-pip-version-check --progress-bar on -e '.[dev]'
	@touch $@

grade: $(STAMP)
	$(PY) -m grader grade $(SUBMISSION) $(if $(TOPICS),--topics $(TOPICS),) $(if $(K),-k "$(K)",)

grade-class: $(STAMP)
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade-class SUBMISSIONS=DIR [OUT=DIR] [TOPICS=softmax,mlp] [ROSTER=roster.csv] [TIMES=times.csv]"; exit 2; }
	$(PY) -m grader batch $(SUBMISSIONS) --out $(or $(OUT),grading/class) $(if $(TOPICS),--topics $(TOPICS),) $(if $(ROSTER),--roster $(ROSTER),) $(if $(TIMES),--times $(TIMES),)

notebook: $(STAMP)
	@test -n "$(TOPIC)" || { echo "usage: make notebook TOPIC=softmax"; exit 2; }
	@$(PY) -c "import notebook, ipykernel" 2>/dev/null || \
		$(PY) -m pip install --disable-pip-version-check --progress-bar on notebook ipykernel
	$(PY) -m grader notebook $(TOPIC)

export: $(STAMP)
	@test -n "$(LMS)" -a -n "$(ROSTER)" || { echo "usage: make export LMS=canvas|moodle ROSTER=roster.csv [OUT=grading/class]"; exit 2; }
	$(PY) -m grader export --$(LMS) --roster $(ROSTER) --gradebook $(or $(OUT),grading/class)/gradebook.csv

test: $(STAMP)
	$(PY) -m grader sync --check
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest tests/kit -q -n 2 --dist loadfile --no-loadscope-reorder

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) -m grader.instructor.bench_grade
	$(PY) -m grader.instructor.bench
	$(PY) -m grader.instructor.bench_class
	$(PY) -m grader.instructor.bench_similarity

release: $(STAMP)
	$(PY) -m grader release --out release

gradescope: $(STAMP)
	$(PY) -m grader gradescope --out $(or $(OUT),autograder.zip) $(if $(TOPICS),--topics $(TOPICS),)

nbgrader: $(STAMP)
	@test -n "$(ARGS)" || { echo 'usage: make nbgrader ARGS="generate_assignment softmax" [COURSE=DIR]'; exit 2; }
	$(PY) -m grader nbgrader --course $(or $(COURSE),release/nbgrader) $(ARGS)

sync: $(STAMP)
	$(PY) -m grader sync

data: $(STAMP)
	$(PY) datasets/fetch.py all

clean:
	rm -rf grading release .hypothesis autograder.zip
