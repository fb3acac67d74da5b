# Two commands for a fresh machine:  `make demo`  and  `make test`.
# Both create the virtual environment on first use (CPU PyTorch 2.13 pinned for development;
# the package itself accepts any torch >= 2.3).
PYTHON ?= python3
VENV ?= .venv
XTCOCO_VENV ?= .venv-xtcocotools
PY := $(VENV)/bin/python
PIP_FLAGS ?= -q --disable-pip-version-check

.PHONY: demo test test-torch install clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) "torch==2.13.0" -e ".[dev]"
	touch $@

# xtcocotools 1.14.3 wheels need numpy < 2; the package uses numpy 2, so the tests run
# xtcocotools (the reference whole-body scorer) in this separate interpreter to cross-check ours.
$(XTCOCO_VENV)/.installed:
	$(PYTHON) -m venv $(XTCOCO_VENV)
	$(XTCOCO_VENV)/bin/python -m pip install $(PIP_FLAGS) "numpy<2" "xtcocotools==1.14.3"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/gtpt demo

test: $(VENV)/.installed $(XTCOCO_VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks tools
	GTPT_XTCOCOTOOLS_PYTHON=$(XTCOCO_VENV)/bin/python $(PY) -m pytest -q

# the suite under another torch (not in CI; a CUDA build from PyPI, ~3 GB), e.g. the oldest supported:
#   make test-torch TORCH=2.3.1
TORCH ?= 2.3.1
test-torch: $(XTCOCO_VENV)/.installed
	$(PYTHON) -m venv .venv-torch-$(TORCH)
	.venv-torch-$(TORCH)/bin/python -m pip install $(PIP_FLAGS) "torch==$(TORCH)" -e ".[dev]"
	GTPT_XTCOCOTOOLS_PYTHON=$(XTCOCO_VENV)/bin/python .venv-torch-$(TORCH)/bin/python -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) $(XTCOCO_VENV) .venv-torch-* gtpt_demo_output .pytest_cache
