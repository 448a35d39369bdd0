# fieldflash — see README.md. `make demo` and `make test` install what a fresh Debian or
# Ubuntu machine lacks (via .ci/deps, apt-get) before they build.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
# Everything but the GUI and USB packages builds without cgo.
export CGO_ENABLED ?= 0
GO ?= go
BIN := bin

.PHONY: all deps build test unit fuzz demo bench corpus clean

all: build

deps:
	@bash .ci/deps

build: deps
	$(GO) build -o $(BIN)/fieldflash .
	$(GO) build -o $(BIN)/fieldflash-release ./cmd/fieldflash-release

# Every test: vet, the unit and end-to-end tests (real ptys, lrzsz, openssl, tar), then each
# fuzz target for a few seconds.
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...
	bash .ci/fuzz

unit:
	$(GO) test -count=1 ./...

fuzz:
	FUZZTIME=$${FUZZTIME:-60s} bash .ci/fuzz

demo: build
	$(BIN)/fieldflash demo

# Speed and memory figures, one `BENCH name value unit` line each.
bench: build
	bash .ci/bench

# Regenerate the tamper corpus and the demo bundle (deterministic: no diff expected).
corpus:
	$(GO) run ./verify/internal/tampergen -out verify/testdata -vectors testdata
	$(GO) run ./assets/internal/demogen -out assets/demo

clean:
	rm -rf $(BIN)
