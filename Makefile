# Two commands on a fresh machine:
#   make demo   -> set up .venv and run the main job (pipeline notebook, offline defaults, figures/)
#   make test   -> set up .venv and run every test
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/vlmxplain run pipeline --out figures -p data gallery -p run_dir runs/pipeline-gallery --name pipeline-gallery.ipynb
	$(VENV)/bin/vlmxplain run pipeline --out figures -p data shapes -p judge offline:groundtruth -p run_dir runs/pipeline-shapes --name pipeline-shapes.ipynb

test: $(STAMP)
	MALLOC_ARENA_MAX=1 $(PY) -m pytest tests vlmxplain/notebooks --nbval-lax --ignore=tests/notebooks

bench: $(STAMP)
	$(PY) benchmarks/bench_cams.py
	$(PY) benchmarks/bench_pipeline.py
	$(PY) benchmarks/bench_judges.py
	$(PY) benchmarks/bench_tuner.py
	$(PY) benchmarks/bench_cli.py
	$(PY) benchmarks/bench_batch.py
	$(PY) benchmarks/bench_cam_methods.py
	$(PY) benchmarks/bench_streaming.py
	$(PY) benchmarks/bench_host_memory.py

clean:
	rm -rf $(VENV) figures runs
