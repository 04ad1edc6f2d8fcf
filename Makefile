# The two commands of the README's quick start:
#   make up     install everything, then run Stockade (agent + manager + API on 127.0.0.1:8720)
#               make up PORT=8721 DATA_DIR=/tmp/stockade RULES=my_rules.yaml   (each optional)
#   make test   install everything, then run the whole test suite (what CI runs)
.PHONY: install up test lint unit bench

PORT ?=
DATA_DIR ?=
RULES ?=

install:
	@scripts/install.sh

up: install
	.venv/bin/stockade up $(if $(PORT),--port $(PORT)) $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(foreach r,$(RULES),--rules $(r))

lint: install
	.venv/bin/ruff check src tests benchmarks
	.venv/bin/ruff format --check src tests benchmarks
	.venv/bin/mypy
	.venv/bin/lint-imports

unit: install
	.venv/bin/python -m pytest -q -p no:cacheprovider

test: lint unit

bench: install
	.venv/bin/python benchmarks/engine_throughput.py
	.venv/bin/python benchmarks/replay_throughput.py
