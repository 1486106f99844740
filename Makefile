# Two commands set everything up on a fresh clone: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU wheel of torch that pip finds on this machine's disk; an open range pulls a multi-GB CUDA build.
TORCH := torch==2.13.0

.PHONY: demo test bench bench-gpu clean clean-cache

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Runtime install (numpy, numba) plus what the demo draws with.
$(VENV)/.demo: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[plot,progress]"
	touch $@

# pip byte-compiles what it installs on one core (56 s of the 95 s here); compileall does it on
# every core. Files that do not compile for this Python (torch ships some for 3.12 only) are
# skipped, as pip skips them: hence the "|| true".
$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --no-compile "$(TORCH)"
	$(BIN)/pip install -q --no-compile -e ".[test,bench,plot,progress,distributed]"
	$(BIN)/python -m compileall -qq -j 0 "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" || true
	touch $@ $(VENV)/.demo

demo: $(VENV)/.demo
	$(BIN)/python -m fastdecay demo --out demo-out

# Every kernel compiled first (one family per process), then the suite on two worker
# processes (pytest-xdist): the workers load the kernels instead of both compiling them.
test: $(VENV)/.test
	$(BIN)/python -m fastdecay compile --jobs 2
	$(BIN)/python -m pytest -q --benchmark-disable -n 2

bench: $(VENV)/.test
	mkdir -p .benchmarks
	$(BIN)/python -m pytest bench --benchmark-only --benchmark-columns=median,iqr,ops -q --benchmark-json=.benchmarks/last.json
	$(BIN)/python bench/report.py .benchmarks/last.json

# On a machine with a CUDA GPU: the GPU tests and benchmarks in one go (bench/gpu_check.sh),
# with a Python that has CuPy and (for the torch rows) torch with CUDA.
GPU_PY ?= python3
bench-gpu:
	bash bench/gpu_check.sh .benchmarks/gpu $(GPU_PY)

# Empty Numba's on-disk kernel cache (editing fastdecay/_cpu/*.py already recompiles the
# kernels: fastdecay/_cpu/__init__.py stamps them with a hash of all those files).
clean-cache:
	find fastdecay -name '*.nbi' -delete -o -name '*.nbc' -delete

clean: clean-cache
	rm -rf $(VENV) build dist .pytest_cache .benchmarks demo-out
