#!/usr/bin/env bash
# Prints the path of versitygw v1.8.0, an S3 server that verifies SigV4
# signatures as AWS S3 and MinIO do (the tests' own S3 server, gofakes3,
# checks none). Builds it with `go install` into $(go env GOPATH)/bin when
# it is missing: minutes with a cold build cache, seconds with a warm one.
# The presigned-upload test (shared/docs) runs against it.
set -euo pipefail
version=v1.8.0
bin="$(go env GOPATH)/bin/versitygw"
stamp="$bin.$version"
if [ ! -x "$bin" ] || [ ! -f "$stamp" ]; then
  echo "versitygw.sh: building versitygw $version (go install)" >&2
  GOFLAGS=-mod=mod go install "github.com/versity/versitygw/cmd/versitygw@$version" >&2
  touch "$stamp"
fi
echo "$bin"
