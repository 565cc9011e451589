# Drover: build, test, install, package, demo and benchmark.
#
#   make demo      start the simulated cluster, run the release drover against it, tear it down (root)
#   make test      install what is missing (as root, with apt-get), build, run every test
#   make install   install drover, its man page, shell completions and drover-sandbox (PREFIX=/usr/local, DESTDIR; SANDBOX=0: not the sandbox)
#   make deb       build a Debian package of drover (runs without a Swift toolchain)
#   make sanitize  run the SSH, engine and main end-to-end tests under AddressSanitizer, then ThreadSanitizer
#   make chaos     a seeded campaign of sandbox upgrades under faults (CHAOS_SEED, CHAOS_RUNS; root)
#   make bench     SSH round-trip benchmark against OpenSSH's multiplexed client
#   make rehearse  the rolling upgrade on a real etcd + PostgreSQL under a write load, three procedures (root)
#   make lint      the layout check: swift format with the committed .swift-format (CI runs it first)
#   make format    rewrite the sources to that layout
#   make build     debug build of everything (.build/debug)
#   make dist      only the release binary users install (.build-dist/release/drover)
#   make deps      only install the system packages

# Builds go through .ci/swiftpm, which retries once a build whose package manager crashes.
SWIFT ?= bash $(CURDIR)/.ci/swiftpm
PREFIX ?= /usr/local
DESTDIR ?=
APT_PACKAGES := libssh2-1-dev libssl-dev libcurl4-openssl-dev openssh-server openssh-client pkgconf sudo dpkg-dev

# The binary users run: optimized, with the Swift runtime linked in, so that the file alone is a working
# install on a Debian 12 machine without a Swift toolchain. It has its own scratch path: the manual
# generator rebuilds .build's products in its own way.
DIST := .build-dist
DIST_BIN := $(DIST)/release/drover
VERSION := $(shell sed -n 's/.*static let current = "\(.*\)".*/\1/p' Sources/drover/Drover.swift)
DEB_VERSION := $(subst -,~,$(VERSION))
DEB := $(DIST)/drover_$(DEB_VERSION)_amd64.deb
MANUAL := .build/plugins/GenerateManual/outputs/drover/drover.1
COMPLETIONS := $(DIST)/completions

.PHONY: all deps test-deps build dist manual completions install deb test lint format sanitize sanitize-address sanitize-thread demo chaos fuzz fuzz-replay bench bench-upgrade bench-fleet rehearse clean

all: build

# Installs the Debian packages Drover builds and tests with, when any is missing.
deps:
	@missing=""; \
	pkg-config --exists libssh2 2>/dev/null || missing="$$missing libssh2-1-dev pkgconf"; \
	[ -f /usr/include/openssl/evp.h ] || missing="$$missing libssl-dev"; \
	[ -f /usr/include/x86_64-linux-gnu/curl/curl.h ] || [ -f /usr/include/curl/curl.h ] || missing="$$missing libcurl4-openssl-dev"; \
	[ -x /usr/sbin/sshd ] || missing="$$missing openssh-server"; \
	command -v ssh-keygen >/dev/null 2>&1 || missing="$$missing openssh-client"; \
	[ -x /usr/bin/sudo ] || missing="$$missing sudo"; \
	command -v dpkg-shlibdeps >/dev/null 2>&1 || missing="$$missing dpkg-dev"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "make: installing$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null || exit 1; \
		else \
			echo "make: missing system packages:$$missing" >&2; \
			echo "make: install them with: sudo apt-get install -y $(APT_PACKAGES)" >&2; \
			exit 1; \
		fi; \
	fi

build: deps
	$(SWIFT) build

dist: deps
	$(SWIFT) build -c release --static-swift-stdlib --scratch-path $(DIST) --product drover

# The sandbox as `make install` installs it: optimized, the Swift runtime linked in, beside its simulator.
.PHONY: sandbox-dist
sandbox-dist: deps
	$(SWIFT) build -c release --static-swift-stdlib --scratch-path $(DIST) --product drover-sandbox
	$(SWIFT) build -c release --static-swift-stdlib --scratch-path $(DIST) --product chef-backend-sim

# swift-argument-parser's manual generator, run on the debug build (the manual is the same for every build).
manual: build
	rm -rf $(dir $(MANUAL))
	$(SWIFT) package generate-manual --configuration debug >/dev/null
	@# A blank line in the help's text is a paragraph break in the page, not an empty input line man warns about.
	sed -i 's/^$$/.Pp/' $(MANUAL)

completions: dist
	mkdir -p $(COMPLETIONS)
	$(DIST_BIN) --generate-completion-script bash > $(COMPLETIONS)/drover.bash
	$(DIST_BIN) --generate-completion-script zsh > $(COMPLETIONS)/_drover
	$(DIST_BIN) --generate-completion-script fish > $(COMPLETIONS)/drover.fish

# The sandbox (drover-sandbox, the simulator it runs and the real data layer's script for `up --real`, side by
# side in lib/drover; drover-sandbox on PATH through a link) is installed too, for rehearsing; SANDBOX=0 leaves it
# out (the Debian package does).
SANDBOX ?= 1
install: dist manual completions $(if $(filter 1,$(SANDBOX)),sandbox-dist)
	install -D -m 0755 $(DIST_BIN) $(DESTDIR)$(PREFIX)/bin/drover
	@if [ "$(SANDBOX)" = 1 ]; then \
		install -D -m 0755 $(DIST)/release/drover-sandbox $(DESTDIR)$(PREFIX)/lib/drover/drover-sandbox && \
		install -D -m 0755 $(DIST)/release/chef-backend-sim $(DESTDIR)$(PREFIX)/lib/drover/chef-backend-sim && \
		install -D -m 0755 Fixtures/RealServices/datalayer.py $(DESTDIR)$(PREFIX)/lib/drover/datalayer.py && \
		ln -sf ../lib/drover/drover-sandbox $(DESTDIR)$(PREFIX)/bin/drover-sandbox; \
	fi
	install -D -m 0644 $(MANUAL) $(DESTDIR)$(PREFIX)/share/man/man1/drover.1
	install -D -m 0644 $(COMPLETIONS)/drover.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/drover
	install -D -m 0644 $(COMPLETIONS)/_drover $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_drover
	install -D -m 0644 $(COMPLETIONS)/drover.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/drover.fish

# The package installs under /usr; its dependencies are the shared libraries the binary links, as
# dpkg-shlibdeps names them (libssh2-1, libssl3, libcurl4, libc6, ...), never the Swift toolchain.
deb: install-deb-root
	@root=$(DIST)/deb-root; \
	mkdir -p $$root/DEBIAN $(DIST)/shlibs/debian; \
	printf 'Source: drover\n\nPackage: drover\nArchitecture: amd64\n' > $(DIST)/shlibs/debian/control; \
	depends=$$(cd $(DIST)/shlibs && dpkg-shlibdeps -O -e$(CURDIR)/$$root/usr/bin/drover 2>/dev/null | sed -n 's/^shlibs:Depends=//p'); \
	[ -n "$$depends" ] || { echo "make: dpkg-shlibdeps found no dependencies" >&2; exit 1; }; \
	size=$$(du -sk $$root/usr | cut -f1); \
	printf '%s\n' "Package: drover" "Version: $(DEB_VERSION)" "Architecture: amd64" \
		"Maintainer: Drover developers <drover@localhost>" "Installed-Size: $$size" "Depends: $$depends" \
		"Section: admin" "Priority: optional" \
		"Description: upgrades and repairs Chef Backend HA clusters over SSH" \
		" Drover runs Chef's documented rolling upgrade and recovery runbooks against a" \
		" Chef Backend cluster over SSH, one node at a time, with live verification." > $$root/DEBIAN/control; \
	dpkg-deb --root-owner-group -Zxz --build $$root $(DEB) >/dev/null && echo "make: built $(DEB) (Depends: $$depends)"

.PHONY: install-deb-root
install-deb-root:
	rm -rf $(DIST)/deb-root
	$(MAKE) --no-print-directory install DESTDIR=$(CURDIR)/$(DIST)/deb-root PREFIX=/usr SANDBOX=0

# What only the tests use: a real browser (Debian's chromium, headless) renders the HTML run report.
test-deps: deps
	@missing=""; \
	[ -x /usr/lib/postgresql/15/bin/postgres ] || missing="$$missing postgresql-15"; \
	[ -x /usr/bin/etcd ] || missing="$$missing etcd-server"; \
	[ -x /usr/bin/etcdctl ] || missing="$$missing etcd-client"; \
	/usr/bin/python3 -c 'import psycopg2' 2>/dev/null || missing="$$missing python3-psycopg2"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "make: installing$$missing (the real data layer: PostgreSQL replication and etcd)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
		else \
			echo "make: missing$$missing; the real data layer test needs them (sudo apt-get install -y$$missing)" >&2; \
		fi; \
	fi
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "make: installing chromium (the HTML report's browser test)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null || exit 1; \
		else \
			echo "make: chromium is missing; the HTML report's browser test will be skipped (sudo apt-get install -y chromium)" >&2; \
		fi; }

# End-to-end tests run the binary users install (DROVER_BIN) and inspect the package (DROVER_DEB).
# At most TEST_WIDTH tests at once: each sandbox test runs several sshd and simulator processes, and
# Swift Testing otherwise starts them all together (on 2 cores, 50 clusters at once starve each other).
TEST_WIDTH ?= 8
# Then the fuzz targets' corpus replayed, with a short seeded mutation pass of each (FUZZ_TEST_SECONDS).
FUZZ_TEST_SECONDS ?= 5
# Then a short chaos campaign (CHAOS_TEST_RUNS runs of `make chaos`, fixed seed) with the release binary.
CHAOS_TEST_RUNS ?= 3
test: test-deps deb
	@echo "make test: building the tests at $$(date +%T)"
	$(SWIFT) build --build-tests
	@echo "make test: swift test at $$(date +%T)"
	DROVER_BIN=$(CURDIR)/$(DIST_BIN) DROVER_DEB=$(CURDIR)/$(DEB) \
	  SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH=$(TEST_WIDTH) $(SWIFT) test --skip-build
	@echo "make test: the fuzz corpus at $$(date +%T)"
	@for target in $(FUZZ_TARGETS); do DROVER_FUZZ_TARGET=$$target .build/debug/drover-fuzz \
		--mutate $(FUZZ_TEST_SECONDS) Fixtures/Fuzz/corpus/$$target || exit 1; done
	@echo "make test: the chaos campaign at $$(date +%T)"
	@if [ "$$(id -u)" = 0 ]; then \
		python3 Fixtures/Chaos/chaos.py --drover $(CURDIR)/$(DIST_BIN) --sandbox $(CURDIR)/.build/debug/drover-sandbox \
		  --runs $(CHAOS_TEST_RUNS) --seed 20; \
	else echo "make: the chaos campaign needs root (the sandbox); skipped"; fi

# A seeded, reproducible campaign of sandbox upgrades with one to three faults at random moments, each run
# followed by the next command Drover printed until the cluster is done or Drover rightly refuses
# (Fixtures/Chaos/chaos.py). Prints one table; fails on any invariant violation. Needs root.
CHAOS_SEED ?= 1
CHAOS_RUNS ?= 30
chaos: deps dist
	@[ "$$(id -u)" = 0 ] || { echo "make chaos needs root: the simulated nodes listen on port 22 and use mount namespaces" >&2; exit 1; }
	$(SWIFT) build --product chef-backend-sim
	$(SWIFT) build --product drover-sandbox
	python3 Fixtures/Chaos/chaos.py --drover $(CURDIR)/$(DIST_BIN) --sandbox $(CURDIR)/.build/debug/drover-sandbox \
	  --runs $(CHAOS_RUNS) --seed $(CHAOS_SEED)

# Layout is the toolchain's `swift format` with the committed .swift-format (120 columns): `make lint` fails
# on any finding, `make format` rewrites the files in place. It also fails when the engine writes to the
# terminal or reads from it: the engine emits events and returns outcomes (README, "Architecture").
LINT_PATHS := Package.swift Sources Tests Fixtures Benchmarks
ENGINE_TERMINAL := Output\.|FileHandle\.standard|\bprint\(|readLine\(|isatty\(
lint:
	$(SWIFT) format lint --strict --parallel --recursive $(LINT_PATHS)
	@if grep -rnE '$(ENGINE_TERMINAL)' Sources/DroverEngine; then \
		echo "make lint: Sources/DroverEngine writes to or reads from the terminal (above); emit an event, return an outcome or ask through Interaction" >&2; \
		exit 1; \
	fi

format:
	$(SWIFT) format format --in-place --parallel --recursive $(LINT_PATHS)

# The SSH layer, the engine and the main end-to-end tests under each sanitizer, each in its own debug build
# (drover included); .ci/sanitize lists the suites.
sanitize: sanitize-address sanitize-thread
sanitize-address: deps
	bash .ci/sanitize address
sanitize-thread: deps
	bash .ci/sanitize thread

demo: deps dist
	@[ "$$(id -u)" = 0 ] || { echo "make demo needs root: the simulated nodes listen on port 22 and use mount namespaces" >&2; exit 1; }
	$(SWIFT) build --product drover-sandbox
	$(SWIFT) build --product chef-backend-sim
	DROVER=$(CURDIR)/$(DIST_BIN) bash Fixtures/Sandbox/demo.sh

# libFuzzer (the toolchain's -sanitize=fuzzer, with AddressSanitizer) over every parser of outside input
# (Fixtures/Fuzz/drover-fuzz): FUZZ_SECONDS per target, from the committed seed corpus. Fails on a crash, a
# leak, a timeout or the memory limit; the input is left in .build-fuzz/crashes (fix it, then add it to
# Fixtures/Fuzz/corpus/TARGET). New inputs it finds stay in .build-fuzz/corpus. Linked with lld (gold
# cannot link libFuzzer's driver into a SwiftPM executable).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := inventory ansible ssh-config playbook chef-backend drbd node-stream records keys text
fuzz: deps
	@mkdir -p .build-fuzz/crashes
	@printf '{ "schemaVersion": "1.0", "linker": { "path": "%s" } }\n' \
		"$$(dirname "$$(readlink -f "$$(command -v swift)")")/ld.lld" > .build-fuzz/lld.json
	$(SWIFT) build -c release --product drover-fuzz --scratch-path .build-fuzz --toolset .build-fuzz/lld.json \
		-Xswiftc -sanitize=fuzzer,address -Xswiftc -DDROVER_FUZZ -Xswiftc -enable-testing
	@for target in $(FUZZ_TARGETS); do \
		mkdir -p .build-fuzz/corpus/$$target; \
		DROVER_FUZZ_TARGET=$$target ASAN_OPTIONS=detect_leaks=1 .build-fuzz/release/drover-fuzz \
			-max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
			-artifact_prefix=.build-fuzz/crashes/$$target- .build-fuzz/corpus/$$target Fixtures/Fuzz/corpus/$$target \
			> .build-fuzz/$$target.log 2>&1; status=$$?; \
		echo "fuzz $$target: $$(grep -E '^Done [0-9]+ runs' .build-fuzz/$$target.log | tail -1)"; \
		[ $$status = 0 ] || { tail -30 .build-fuzz/$$target.log; echo "make fuzz: $$target failed (exit $$status)" >&2; exit 1; }; \
	done

# The fuzz targets' corpus replayed through the plain build (part of `make test`): every input kept stays fixed.
fuzz-replay:
	$(SWIFT) build --product drover-fuzz
	@for target in $(FUZZ_TARGETS); do DROVER_FUZZ_TARGET=$$target .build/debug/drover-fuzz Fixtures/Fuzz/corpus/$$target || exit 1; done

bench: deps
	$(SWIFT) build -c release --product drover-bench
	.build/release/drover-bench

# The rolling upgrade rehearsed on a real data layer (drover-sandbox up --real: etcd and PostgreSQL 15
# replication) under a write load: Drover's procedure, a naive one by hand, and Drover's with the leader's
# PostgreSQL killed mid-way, each on a fresh cluster; one Markdown table (Fixtures/RealServices/rehearse.py).
# Needs root. REHEARSE_FLAGS=--short: Drover's procedure only.
REHEARSE_FLAGS ?=
rehearse: deps test-deps dist
	$(SWIFT) build -c release --product chef-backend-sim
	$(SWIFT) build -c release --product drover-sandbox
	/usr/bin/python3 Fixtures/RealServices/rehearse.py --drover $(CURDIR)/$(DIST_BIN) \
	  --sandbox $(CURDIR)/.build/release/drover-sandbox $(REHEARSE_FLAGS)

# The full sandbox upgrade at zero simulator delays by Drover (the release binary), the reference bash +
# OpenSSH ControlMaster script and Ansible (ansible-core from PyPI in .venv-bench), interleaved rounds,
# each checked from the simulator's state (Benchmarks/Upgrade). Needs root, as the sandbox does.
# BENCH_COMPARE="NAME=BIN ..." adds other drover builds (an older release) to the same rounds.
BENCH_ROUNDS ?= 5
BENCH_COMPARE ?=
bench-upgrade: deps dist
	$(SWIFT) build -c release --product chef-backend-sim
	$(SWIFT) build -c release --product drover-sandbox
	@python3 -m venv --help >/dev/null 2>&1 || apt-get install -y python3-venv
	[ -x .venv-bench/bin/ansible-playbook ] || { python3 -m venv .venv-bench && .venv-bench/bin/pip install -q 'ansible-core>=2.17,<2.20'; }
	python3 Benchmarks/Upgrade/bench-upgrade.py --drover $(CURDIR)/$(DIST_BIN) --sandbox $(CURDIR)/.build/release/drover-sandbox \
	  --ansible-playbook $(CURDIR)/.venv-bench/bin/ansible-playbook --rounds $(BENCH_ROUNDS) \
	  $(foreach build,$(BENCH_COMPARE),--compare $(build))

# One drover upgrade of a fleet of sandbox clusters (BENCH_CLUSTERS, default 20: 60 backends, the sandbox's
# default delays) against one cluster alone, timed before and after it (Benchmarks/Fleet). Needs root.
BENCH_CLUSTERS ?= 20
bench-fleet: deps dist
	$(SWIFT) build -c release --product chef-backend-sim
	$(SWIFT) build -c release --product drover-sandbox
	python3 Benchmarks/Fleet/bench-fleet.py --drover $(CURDIR)/$(DIST_BIN) --sandbox $(CURDIR)/.build/release/drover-sandbox \
	  --clusters $(BENCH_CLUSTERS)

clean:
	rm -rf .build $(DIST) .build-sanitize-* .venv-bench
