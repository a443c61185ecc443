# The two commands a newcomer needs: `make demo` and `make test`.
# Everything else here is a step of those two.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# pytest-xdist workers: the integration tests mostly wait on a control plane, so more
# workers than cores pay: six ran the whole suite in 13 minutes on 2 cores, where one
# took 47 (docs/testing.md). Each worker starts its own control plane and simulator.
# TEST_WORKERS=0 runs everything in one process, in pytest's order.
TEST_WORKERS ?= 6
# tests/fixtures/scheduling.py decides what runs together (an integration module, the
# node tier); without reordering, the modules with slow scenarios are handed out first.
XDIST  := -n $(TEST_WORKERS) --no-loadscope-reorder
# The inner loop's integration smoke: the test bed, and the operator against it.
SMOKE  := tests/integration/test_testbed.py tests/integration/test_controller_lifecycle.py

.PHONY: venv envtest image lint test test-fast test-unit test-integration demo crds dashboard bench bench-smoke clean

venv: $(STAMP)

# The runtime dependencies first, at the image's pinned versions with their hashes
# checked (operator/requirements.lock), then the package and the test tools.
$(STAMP): pyproject.toml operator/requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r operator/requirements.lock
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# kube-apiserver, kube-controller-manager, etcd and helm, built from Go modules
# once and cached under ~/.cache/rayref/envtest/<version>.
envtest: venv
	$(BIN)/python -m rayref.devcluster.build

# The operator's OCI image, without Docker: dist/rayref-operator-<version>.oci.tar
# (needs root and Debian's mmdebstrap; docs/install.md).
image: venv
	$(BIN)/python -m rayref.devcluster.image

crds: venv
	$(BIN)/rayref crds --output crds
	cp crds/*.yaml charts/rayref-operator/crds/

# The Grafana dashboard, generated from rayref/monitoring/dashboard.py into the chart
# (a unit test fails when the committed JSON drifts from the code).
dashboard: venv
	$(BIN)/python -m rayref.monitoring.dashboard --output charts/rayref-operator/dashboards/rayref-operator.json

lint: venv
	$(BIN)/ruff check operator tests bench
	$(BIN)/ruff format --check operator tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test-unit: venv
	$(BIN)/pytest tests/unit

test-integration: venv envtest
	$(BIN)/pytest tests/integration

# The test command of the README and of CI: lint, then every tier.
test: venv envtest lint
	$(BIN)/pytest $(XDIST) tests

# The inner loop (under 3 minutes): lint, the unit tier, an integration smoke.
test-fast: venv envtest lint
	$(BIN)/pytest $(XDIST) tests/unit $(SMOKE)

demo: venv envtest
	$(BIN)/rayref demo $(DEMO_ARGS)

bench: venv envtest
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-smoke: venv envtest
	$(BIN)/python -m bench.run --sizes 200 --smoke

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
