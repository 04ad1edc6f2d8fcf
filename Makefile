# The two commands of the README's quick start:
#   make up     install everything, then run Stockade (agent + manager + API on 127.0.0.1:8720)
#               make up PORT=8721 DATA_DIR=/tmp/stockade RULES=my_rules.yaml   (each optional)
#   make test   install everything, then run the whole test suite (what CI runs)
# The developer loop, which needs only the virtualenv (no root, no system packages):
#   make lint   ruff, formatting, mypy, import contracts, commit subjects
#   make check  lint, then the tests that need no root, eBPF, containers or PostgreSQL
.PHONY: install venv up test lint check unit bench

PORT ?=
DATA_DIR ?=
RULES ?=
#: the tests `make check` runs: those marked for none of the machine's capabilities
NO_ROOT_TESTS = not root and not ebpf and not containers and not postgres

install:
	@scripts/install.sh

venv:
	@scripts/install.sh --venv

up: install
	.venv/bin/stockade up $(if $(PORT),--port $(PORT)) $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(foreach r,$(RULES),--rules $(r))

lint: venv
	.venv/bin/ruff check src tests benchmarks
	.venv/bin/ruff format --check src tests benchmarks
	.venv/bin/mypy
	.venv/bin/lint-imports
	scripts/check-commits.sh

check: lint
	.venv/bin/python -m pytest -q -p no:cacheprovider -m "$(NO_ROOT_TESTS)"

unit: install
	.venv/bin/python -m pytest -q -p no:cacheprovider --durations=15

test: install lint unit

bench: install
	.venv/bin/python benchmarks/engine_throughput.py
	.venv/bin/python benchmarks/replay_throughput.py
