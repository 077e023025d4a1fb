# qinqing — the two commands are `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
PKGS := $(shell $(GO) list ./... 2>/dev/null | grep -v /test/deploy)

.PHONY: run test test-fast test-deploy bench bench-pipeline bench-ingest bench-coldstart bench-appeals bench-import vet fmt build migrate clean

## run: start Postgres, S3, every function and the local broker; play a sample week; keep serving.
run:
	@mkdir -p .dev
	$(GO) build -o .dev/devstack ./cmd/devstack
	@.dev/devstack

## test: the whole suite (throwaway Postgres unless TEST_DATABASE_URL is set;
## versitygw, the SigV4-checking S3 server of the upload test, built if missing).
test: vet
	VERSITYGW=$$(hack/versitygw.sh) hack/with-postgres.sh $(GO) test -count=1 -timeout 20m ./...

## test-fast: everything but the knative + helm validation package.
test-fast:
	VERSITYGW=$$(hack/versitygw.sh) hack/with-postgres.sh $(GO) test -count=1 $(PKGS)

## test-deploy: only the offline Knative + Helm validation.
test-deploy:
	$(GO) test -count=1 ./test/deploy/...

## bench: throughput and memory ratios against baselines run in the same process,
## one package at a time (-p 1: two packages' benchmarks would load each other).
bench:
	hack/with-postgres.sh $(GO) test -p 1 -run '^$$' -bench . -benchmem ./...

## bench-*: one benchmark group each (make bench runs them all).
bench-pipeline:
	hack/with-postgres.sh $(GO) test -run '^$$' -bench 'Pipeline|PoolerMode' ./shared/runtime/
bench-ingest:
	hack/with-postgres.sh $(GO) test -run '^$$' -bench Ingest ./functions/forum-signup/
bench-coldstart:
	hack/with-postgres.sh $(GO) test -run '^$$' -bench ColdStart ./cmd/bare-receiver/
bench-appeals:
	hack/with-postgres.sh $(GO) test -run '^$$' -bench AppealScale ./functions/deadline-check/
bench-import:
	hack/with-postgres.sh $(GO) test -run '^$$' -bench Import -benchtime 1x ./functions/recycling-trade/

vet:
	@test -z "$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go'))" || { gofmt -l $$(git ls-files -co --exclude-standard '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files -co --exclude-standard '*.go')

## build: every function and command into bin/.
build:
	$(GO) build -o bin/ ./functions/... ./cmd/...

## migrate: apply migrations to DATABASE_URL.
migrate:
	$(GO) run ./cmd/migrate

clean:
	hack/pg.sh stop .dev/postgres || true
	rm -rf bin .dev
