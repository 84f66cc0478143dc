# The two commands of the README: `make run` (the agent on the bundled sample) and `make test` (everything,
# installing what the tests need). `make bench` measures the README's numbers.
CARGO ?= cargo

.PHONY: run test deps lint bench soak build install image
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
	$(CARGO) bench --locked --bench pod_sync
	$(CARGO) bench --locked --bench events
	$(CARGO) bench --locked --bench journald
	$(CARGO) bench --locked --bench nflog
	$(CARGO) bench --locked --bench garbage
	$(CARGO) bench --locked --bench storms
	$(CARGO) bench --locked --bench kube_cpu

# `make soak` (not in CI): the chaos tests of every source kind for SOAK_SECONDS (30 minutes) each, at
# once, with a new seed (printed); the Events' counts must add up exactly at the end.
SOAK_SECONDS ?= 1800
# The test process (the fake API server: a thread per connection) gains two memory maps per thread it
# ever ran (seen on this toolchain: ~1,600 a minute in a soak); the kernel's default limit of 65,530
# maps per process ends a 30-minute run, so the soak raises it (the agents are other processes).
soak: deps
	sysctl -q -w vm.max_map_count=1048576 || echo "soak: cannot raise vm.max_map_count; a run over ~25 minutes may fail"
	KIT_CHAOS_SECONDS=$(SOAK_SECONDS) $(CARGO) test --locked --test integration chaos:: -- --nocapture --test-threads 3

# `make install` (as root) puts the binary, the systemd unit and an example environment file in place;
# DESTDIR stages it (packaging), PREFIX moves the binary and the unit (the unit's ExecStart follows).
# An existing /etc/default/kube-iptables-tailer is kept. Without `build`: `make -o build install`.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
BINARY ?= $(or $(CARGO_TARGET_DIR),target)/release/kube-iptables-tailer

install: build
	install -D -m 0755 $(BINARY) $(DESTDIR)$(BINDIR)/kube-iptables-tailer
	install -d -m 0755 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/default
	install -d -m 0700 $(DESTDIR)$(SYSCONFDIR)/kube-iptables-tailer
	sed -e 's|/usr/local/bin/kube-iptables-tailer|$(BINDIR)/kube-iptables-tailer|g' \
	    -e 's|/etc/|$(SYSCONFDIR)/|g' \
	    systemd/kube-iptables-tailer.service > $(DESTDIR)$(UNITDIR)/kube-iptables-tailer.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/kube-iptables-tailer.service
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/default/kube-iptables-tailer ]; then \
	  echo "install: keeping $(DESTDIR)$(SYSCONFDIR)/default/kube-iptables-tailer (the new example is systemd/kube-iptables-tailer.env)"; \
	else \
	  install -m 0644 systemd/kube-iptables-tailer.env $(DESTDIR)$(SYSCONFDIR)/default/kube-iptables-tailer; \
	fi
	@echo "install: next, put a kubeconfig in $(SYSCONFDIR)/kube-iptables-tailer/kubeconfig, edit $(SYSCONFDIR)/default/kube-iptables-tailer, then: systemctl daemon-reload && systemctl enable --now kube-iptables-tailer"

# `make image` builds the Containerfile with podman, or docker when there is no podman
# (CONTAINER_ENGINE=... picks one). With neither, or with an engine that cannot build here (docker
# without its daemon), it says so in one line and fails: a release script must not go on to push an
# image that was not built.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
IMAGE ?= kube-iptables-tailer:$(VERSION)
CONTAINER_ENGINE ?= $(shell command -v podman 2>/dev/null || command -v docker 2>/dev/null)

image:
	@if [ -z "$(CONTAINER_ENGINE)" ]; then \
	  echo "make image: no container engine (podman or docker) is installed; nothing was built" >&2; exit 1; \
	fi
	@if ! $(CONTAINER_ENGINE) info >/dev/null 2>&1; then \
	  echo "make image: $(CONTAINER_ENGINE) is installed but cannot build here (\`$(CONTAINER_ENGINE) info\` fails: is its daemon running?); nothing was built" >&2; exit 1; \
	fi
	$(CONTAINER_ENGINE) build -f Containerfile -t $(IMAGE) .
