# mcp-gitops — everything a fresh machine needs lives here.
SHELL := /bin/bash
CARGO ?= cargo
CF := tests/gateway/cf.sh
RUN := .run

.PHONY: all build venv sshd k8s-tools browser test lint demo gateway gateway-stop bench clean

all: build

build:
	$(CARGO) build

# The pinned ContextForge gateway in a project-local venv (reused when present).
venv:
	$(CF) install

# Debian's openssh-server for the Git-over-SSH tests (installed when sshd is missing).
sshd:
	tests/git/sshd.sh install

# Offline Kubernetes tooling for the chart checks: helm and kubernetes-validate under .tools/.
k8s-tools:
	tests/k8s/tools.sh install

# Debian's chromium and chromium-driver for the browser tests (installed when missing).
browser:
	tests/browser/install.sh

# Everything needed, then all tests (unit, real-gateway integration, chart checks, browser, lint).
test: venv sshd k8s-tools browser lint
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --no-fail-fast; \
	else \
		$(CARGO) test --no-fail-fast; \
	fi

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

# Start a local gateway, give it a realistic configuration, export it, show the result.
demo: venv browser build
	tests/gateway/demo.sh

# A gateway for manual use: prints its URL and how to authenticate. Stop with `make gateway-stop`.
gateway: venv build
	@$(CF) stop $(RUN)/gateway >/dev/null 2>&1 || true
	@rm -rf $(RUN)/gateway
	@url=$$($(CF) start $(RUN)/gateway) && \
	echo "ContextForge gateway running at $$url (stop: make gateway-stop)" && \
	echo "  export MCP_GATEWAY_URL=$$url" && \
	echo "  export $$(grep ^JWT_SECRET_KEY $(RUN)/gateway/gateway.env)" && \
	echo "  export $$(grep ^AUTH_ENCRYPTION_SECRET $(RUN)/gateway/gateway.env)" && \
	echo "  target/debug/mcp-gitops export --user admin@example.com --out backup.json"

gateway-stop:
	$(CF) stop $(RUN)/gateway

# Benchmarks named in the issues; results are recorded in BENCHMARKS.md.
bench: venv
	$(CARGO) build --release
	tests/bench/run.sh

clean:
	$(CARGO) clean
	rm -rf $(RUN)
