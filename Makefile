.PHONY: test lint unit e2e templates demo invoke fuzz bench

# Everything that proves the provider works: formatting, lints, unit, property and handler
# tests, the template checks, and the end-to-end suite against moto and a real Lambda
# runtime emulator. Installs its Python tools into .venv on first use.
test: lint unit templates e2e

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

unit:
	cargo test --all-targets

templates:
	scripts/lint-templates
	scripts/checkov

e2e:
	scripts/e2e

# The provider's main job, locally, in one command.
demo:
	scripts/demo

# Sample events as `sam local invoke -e` runs them, through AWS's Lambda Runtime Interface
# Emulator, without Docker: make invoke EVENTS="events/registry-create.json events/registry-delete.json"
EVENTS ?= events/registry-create.json
invoke:
	scripts/invoke $(EVENTS)

# Fuzz every target for 10 minutes each (needs `cargo install cargo-fuzz`).
fuzz:
	scripts/fuzz 600

# Cold start, latency, memory and package size, side by side with a minimal lambda_runtime
# function, the lock's added time, and 24 concurrent statement Creates through 6 processes
# (README, Performance). Builds release binaries and the package first.
bench:
	scripts/bench
