# phototag: the commands a newcomer needs. `make test` and `make run` set everything up first.
PREFIX ?= /usr/local
CARGO ?= cargo
CACHE ?= $(or $(PHOTOTAG_CACHE_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/phototag)
# `make run` starts the daemon on the default configuration, watching PHOTOS (Ctrl-C stops it).
PHOTOS ?= $(HOME)/Pictures
RUN_ARGS ?= watch --root "$(PHOTOS)"

.PHONY: all setup libtorch build release test run install bench lint fmt clean

all: build

## libtorch in the per-user cache, the binary, and the default models (idempotent)
setup:
	scripts/setup.sh

libtorch:
	scripts/setup.sh --libtorch-only

build: libtorch
	$(CARGO) build --bins

release: libtorch
	$(CARGO) build --release --bins

## every test (sets up first); the core suite needs neither the network nor ../shared.
## The browser test (tests/e2e_web.rs) needs Chromium and Playwright: installed here when
## possible (~35 s once), else that test says SKIPPED and why.
test: setup
	-scripts/e2e-setup.sh >/dev/null
	$(CARGO) test --workspace --all-targets

## set up, build optimised, and run phototag on the default configuration
run:
	PROFILE=release scripts/setup.sh
	mkdir -p "$(PHOTOS)"
	target/release/phototag $(RUN_ARGS)

bench: setup release
	target/release/phototag bench --dir tests/fixtures/photos

lint: libtorch
	$(CARGO) fmt --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt

## binary in PREFIX/bin, the libtorch libraries it needs in PREFIX/lib, RUNPATH $ORIGIN/../lib
install: release
	scripts/install.sh "$(PREFIX)"

clean:
	$(CARGO) clean
