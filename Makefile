# Portail des factures. The two commands of the README:
#   make run    everything on this machine (private PostgreSQL, S3, SMTP catcher, PayFiP simulator)
#   make test   vet + every test against real services, browser journeys in Chromium

GO ?= go
export GOFLAGS := -buildvcs=false

.PHONY: run test deps build vet bench docker clean

run: deps-run
	$(GO) run ./cmd/portail dev

# The production binary: no development tooling (see README, "Production build").
build:
	CGO_ENABLED=0 $(GO) build -tags prod -trimpath -ldflags='-s -w' -o bin/portail ./cmd/portail

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l cmd pkg templates migrations configs)" || (gofmt -l cmd pkg templates migrations configs; echo "gofmt needed"; exit 1)

test: deps vet
	$(GO) run ./cmd/portail tenants check
	$(GO) test -race -timeout 40m -count=1 ./...

# What the tests need on a fresh machine: PostgreSQL server binaries,
# Chromium, and axe-core (npm) for the accessibility checks.
deps:
	@sh .ci/deps.sh test
	@test -f pkg/browsertest/node_modules/axe-core/axe.min.js || npm ci --prefix pkg/browsertest --no-audit --no-fund

deps-run:
	@sh .ci/deps.sh run

# Flags: make bench BENCH_FLAGS="--invoices 200000" (see: go run ./cmd/portail bench -h)
bench:
	$(GO) run ./cmd/portail bench $(BENCH_FLAGS)

clean:
	rm -rf bin var
