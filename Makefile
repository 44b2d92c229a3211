.PHONY: test lint
# The project's whole check: formatting, lints, then every test.
test: lint
	cargo test --all-targets

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
