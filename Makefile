# The two commands of the README: `make run` (the agent on the bundled sample) and `make test` (everything,
# installing what the tests need). `make bench` measures the README's numbers.
CARGO ?= cargo

.PHONY: run test deps lint bench build
run: build
	scripts/run-sample.sh

build: deps
	$(CARGO) build --release --locked

deps:
	scripts/install-deps.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

test: deps lint
	$(CARGO) test --locked

bench:
	$(CARGO) bench --locked --bench parse
	$(CARGO) bench --locked --bench latency
	$(CARGO) bench --locked --bench kmsg
	$(CARGO) bench --locked --bench pod_index
	$(CARGO) bench --locked --bench events
	$(CARGO) bench --locked --bench journald
