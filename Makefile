# fieldflash — see README.md. `make demo` and `make test` install what a fresh Debian or
# Ubuntu machine lacks (via .ci/deps, apt-get) before they build.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
# Everything but the GUI and USB packages builds without cgo. The desktop app (the root
# package with ui/, Fyne) needs cgo: GUI turns it on for the targets that build it.
export CGO_ENABLED ?= 0
GO ?= go
GUI := CGO_ENABLED=1
BIN := bin
# The cgo packages: the fieldflash binary (root) and the desktop app.
GUIPKGS := . ./ui/...

.PHONY: all deps build build-cli package-gui test unit fuzz demo bench screenshots corpus clean release release-targets repro package-check usblab

all: build

deps:
	@bash .ci/deps

# bin/fieldflash is the desktop app and the command line in one (cgo).
build: deps
	$(GUI) $(GO) build -o $(BIN)/fieldflash .
	$(GO) build -o $(BIN)/fieldflash-release ./cmd/fieldflash-release

# An installable Linux package of the desktop app (bin/fieldflash.tar.xz: binary, icon,
# .desktop entry) made by Fyne's own packager, fyne.io/tools v1.7.4, from FyneApp.toml.
# fyne package rewrites FyneApp.toml (it counts builds); the file is put back as it was.
# (`make release` builds the reproducible release artifacts into dist/: docs/packaging.md.)
FYNE_TOOLS := fyne.io/tools/cmd/fyne@v1.7.4
package-gui: build
	cp FyneApp.toml $(BIN)/FyneApp.toml.orig
	$(GUI) $(GO) run $(FYNE_TOOLS) package --os linux --exe $(BIN)/fieldflash --release; \
	  status=$$?; mv $(BIN)/FyneApp.toml.orig FyneApp.toml; exit $$status
	mv fieldflash.tar.xz $(BIN)/

# The command line alone, without cgo: every command, no window.
build-cli:
	$(GO) build -o $(BIN)/fieldflash-nogui .

# Every test: vet, the unit and end-to-end tests (real ptys, lrzsz, openssl, tar), each
# fuzz target for a few seconds, then the packaging checks (reproducible build, .deb install,
# Windows build under Wine).
# The GUI's tests: headless widget tests (ui/) and the real binary on Xvfb (root).
test: deps
	$(GO) vet ./...
	$(GUI) $(GO) vet $(GUIPKGS)
	CGO_ENABLED=1 $(GO) vet ./transports/usb ./flasher/dfu ./sim/usblab/...
	$(GO) test -count=1 -timeout 20m ./...
	$(GUI) $(GO) test -count=1 -timeout 20m $(GUIPKGS)
	$(MAKE) usblab
	bash .ci/fuzz
	bash .ci/packaging

# The USB lab: the DFU twins as Linux USB gadgets in a QEMU VM (TCG), dfu-util and
# fieldflash's USB path (cgo, libusb, gousb) against them through the kernel's USB stack.
usblab: deps
	FIELDFLASH_USBLAB=1 $(GO) test -count=1 -timeout 10m -run TestUSBLab ./sim/usblab

unit:
	$(GO) test -count=1 ./...
	$(GUI) $(GO) test -count=1 $(GUIPKGS)

fuzz:
	FUZZTIME=$${FUZZTIME:-60s} bash .ci/fuzz

demo: build
	$(BIN)/fieldflash demo

# Speed and memory figures, one `BENCH name value unit` line each.
bench: build
	bash .ci/bench

# Screenshots of the main screens, from the real window on Xvfb, into docs/screenshots/.
screenshots: deps
	FIELDFLASH_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GUI) $(GO) test -count=1 -run RealWindow .

# Regenerate the tamper corpus and the demo bundle (deterministic: no diff expected).
corpus:
	$(GO) run ./verify/internal/tampergen -out verify/testdata -vectors testdata
	$(GO) run ./assets/internal/demogen -out assets/demo

# Every release artifact into dist/ (binaries for Linux, Windows and macOS, the .deb packages),
# reproducibly, and their SHA-256s (dist/SHA256SUMS). VERSION, RELEASE_COUNTER and
# SOURCE_DATE_EPOCH come from git unless given: docs/packaging.md.
release: deps
	bash packaging/build.sh dist

# The executables of dist/ as targets of the vendor's repository (FIELDFLASH_REPO), for
# self-update; then sign, publish and bundle as docs/release-tool.md says.
release-targets:
	bash packaging/release-targets.sh dist

# The release built twice in two directories and compared, hash by hash.
repro: deps
	bash packaging/repro.sh

# What `make test` runs for packaging: repro, then the .deb installed and run, and the Windows
# build run under Wine.
package-check: deps
	bash .ci/packaging

clean:
	rm -rf $(BIN) dist
