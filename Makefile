.PHONY: help test lint unit e2e templates cdk demo invoke fuzz bench bench-prefix package stackset sim
.DEFAULT_GOAL := help

# A bare `make` lists the targets; it runs nothing.
help:
	@echo "make demo       the provider's main job, locally: a stack's life against moto (no AWS account)"
	@echo "make test       everything CI runs: lint, unit, templates, e2e, cdk"
	@echo "make lint       cargo fmt --check, cargo clippy -D warnings"
	@echo "make unit       cargo test --all-targets"
	@echo "make templates  cfn-lint, sam validate --lint, checkov, stackset.yaml up to date"
	@echo "make e2e        the end-to-end suite (scripts/e2e; extra pytest arguments: scripts/e2e -k ...)"
	@echo "make cdk        the CDK constructs (cdk/): build, unit tests, the npm package and the Python wheel, their tests"
	@echo "make invoke     sample events as sam local invoke runs them: make invoke EVENTS=\"events/a.json events/b.json\""
	@echo "make fuzz       every fuzz target for 10 minutes (needs cargo install cargo-fuzz)"
	@echo "make sim        simulated histories against the contract's model: make sim SEEDS=100000 [FIRST=0]"
	@echo "make bench      cold start, latency, memory and package size against a minimal function"
	@echo "make bench-prefix  a prefix statement over 1,000 and 10,000 repositories (about 25 minutes)"
	@echo "make stackset   writes stackset.yaml (the StackSet edition) from template.yaml"
	@echo "make package    builds once, uploads to each region's bucket: make package REGIONS=\"us-east-1 eu-west-1\" BUCKET_PREFIX=..."

# Everything that proves the provider works: formatting, lints, unit, property and handler
# tests, the template checks, and the end-to-end suite against moto and a real Lambda
# runtime emulator. Installs its Python tools into .venv on first use.
test: lint unit templates e2e cdk

# The Python tools in .venv, installed once before any target that needs them, so that
# `make -j test` never runs two installs into .venv at once (scripts/bootstrap also waits
# for another install where flock(1) exists).
VENV := .venv/.requirements-dev.lock
$(VENV): requirements-dev.lock scripts/bootstrap
	scripts/bootstrap

# The benchmark's binaries (the floor, the analysis cost) need the bench feature, which
# --all-targets leaves off: the second clippy keeps them compiling.
lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --features bench --bins -- -D warnings

unit:
	cargo test --all-targets

templates: $(VENV)
	scripts/lint-templates
	scripts/checkov

e2e: $(VENV)
	scripts/e2e

# The CDK constructs (cdk/, docs/cdk.md): the jsii build, the unit tests (aws-cdk-lib's
# assertions), API.md up to date, the npm package and the Python wheel (cdk/dist), the wheel
# installed into .venv synthesizing an app, and EcrPolicyProvider compared with template.yaml.
# Needs Node.js 20.16 or later; scripts/bootstrap --cdk installs cdk/package-lock.json. The
# function inside these packages is a test stand-in: `scripts/cdk-function --release` and
# `scripts/cdk package --release` make the ones to publish.
cdk: $(VENV)
	scripts/cdk test

# The provider's main job, locally, in one command.
demo: $(VENV)
	scripts/demo

# Sample events as `sam local invoke -e` runs them, through AWS's Lambda Runtime Interface
# Emulator, without Docker: make invoke EVENTS="events/registry-create.json events/registry-delete.json"
EVENTS ?= events/registry-create.json
invoke: $(VENV)
	scripts/invoke $(EVENTS)

# Fuzz every target for 10 minutes each (needs `cargo install cargo-fuzz`).
fuzz:
	scripts/fuzz 600

# Any number of the simulator's histories (tests/simulation.rs, docs/simulation.md) from seed
# FIRST on, with a progress line; a failing history is shrunk and printed with the command
# that replays it. `make unit` runs the first 2,000 and the regression seeds. A release
# build: the first one takes about 5 minutes, then 100,000 histories take about 2.
SEEDS ?= 10000
FIRST ?= 0
sim:
	SIM_HISTORIES=$(SEEDS) SIM_FIRST_SEED=$(FIRST) SIM_PROGRESS=1 SIM_SHRINK=3 \
		cargo test --release --test simulation -- histories --nocapture

# Cold start, latency, memory and package size, side by side with a minimal lambda_runtime
# function, the lock's added time, 24 concurrent statement Creates through 6 processes, and the
# analysis's own cost per event (docs/performance.md), and a prefix statement over 1,000
# repositories. Builds release binaries and the package first.
bench: $(VENV)
	scripts/bench

# A prefix statement over 1,000 and over 10,000 repositories, alone: the 10,000 take too long
# for every `make bench` (docs/performance.md).
bench-prefix: $(VENV)
	scripts/bench --only-prefix --prefix-repositories 1000,10000

# stackset.yaml, the provider for service-managed StackSets, from template.yaml (`make
# templates` fails while the checked-in file differs; docs/org-rollout.md).
stackset: $(VENV)
	scripts/stackset

# The code for a StackSet rollout: built once (cargo lambda build --release), zipped, named by
# its SHA-256 and uploaded to <BUCKET_PREFIX>-<region> for each region; prints the StackSet's
# parameters (docs/org-rollout.md). A prebuilt ZIP= or BINARY= skips the build; ARCH=arm64 or
# x86_64 chooses what to build (default arm64 where its Rust target is installed).
REGIONS ?=
BUCKET_PREFIX ?=
package: $(VENV)
	scripts/package --regions "$(REGIONS)" --bucket-prefix "$(BUCKET_PREFIX)" \
		$(if $(ZIP),--zip "$(ZIP)") $(if $(BINARY),--binary "$(BINARY)") $(if $(ARCH),--arch "$(ARCH)")
