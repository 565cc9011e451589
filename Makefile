# Drover: build, test, demo and benchmark.
#
#   make demo    start the simulated cluster, run drover upgrade against it, tear it down (root)
#   make test    install what is missing (as root, with apt-get), build, run every test
#   make build   build the drover binary (.build/debug/drover)
#   make bench   SSH round-trip benchmark against OpenSSH's multiplexed client
#   make deps    only install the system packages

SWIFT ?= swift
APT_PACKAGES := libssh2-1-dev libssl-dev openssh-server openssh-client pkgconf sudo

.PHONY: all deps build test demo bench clean

all: build

# Installs the Debian packages Drover builds and tests with, when any is missing.
deps:
	@missing=""; \
	pkg-config --exists libssh2 2>/dev/null || missing="$$missing libssh2-1-dev pkgconf"; \
	[ -f /usr/include/openssl/evp.h ] || missing="$$missing libssl-dev"; \
	[ -x /usr/sbin/sshd ] || missing="$$missing openssh-server"; \
	command -v ssh-keygen >/dev/null 2>&1 || missing="$$missing openssh-client"; \
	[ -x /usr/bin/sudo ] || missing="$$missing sudo"; \
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

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

demo: deps
	@[ "$$(id -u)" = 0 ] || { echo "make demo needs root: the simulated nodes listen on port 22 and use mount namespaces" >&2; exit 1; }
	$(SWIFT) build
	bash Fixtures/Sandbox/demo.sh

bench: deps
	$(SWIFT) build -c release --product drover-bench
	.build/release/drover-bench

clean:
	rm -rf .build
