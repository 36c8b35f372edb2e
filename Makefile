# One-command set-up: every target creates .venv and installs the pinned dependencies first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv demo quick test test-quick lint bench clean

$(STAMP): requirements.txt requirements-dev.txt requirements-nodeps.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt
	# imgaug and tf-keras without their declared dependencies (see requirements-nodeps.txt).
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	# The pinned setuptools (requirements-dev.txt) builds the editable install offline.
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

## The main job: train on the built-in synthetic shapes data, evaluate, save detections.
demo: $(STAMP)
	$(PY) samples/shapes/train.py

## A one-minute smoke run of the main job.
quick: $(STAMP)
	$(PY) samples/shapes/train.py --quick

## The full test suite (what CI runs).
test: $(STAMP)
	$(PY) -m pytest -q

## Fast unit tests only.
test-quick: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(PY) -m ruff check mrcnn samples tests bench

bench: $(STAMP)
	$(PY) bench/data_pipeline.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
