#!/usr/bin/env bash
# versitygw, a real S3 gateway (one static Go binary, serving a POSIX directory as buckets), built
# from its Go module (no GitHub downloads here). The tests stand it up as the object store beside
# MLflow (molecule/resources/tasks/world_object_store.yml), the way a site's S3-compatible store would
# be: part of the world around the roles, never installed by them. Cached by version; the binary is
# renamed into place only when the build is complete. Prints the binary's path.
source "$(dirname "$0")/common.sh"
dir=$CACHE_DIR/versitygw/v$VERSITYGW_VERSION
binary=$dir/versitygw
if [ -x "$binary" ]; then echo "$binary"; exit 0; fi

command -v go >/dev/null || { echo "go is needed to build versitygw (Go >= 1.21)" >&2; exit 1; }
log "versitygw: building v$VERSITYGW_VERSION with go install (about a minute)"
work=$(mktemp -d "$CACHE_DIR/versitygw-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$dir"
GOBIN=$work/bin CGO_ENABLED=0 GOFLAGS=-trimpath GOTOOLCHAIN=auto \
  GOMODCACHE=$CACHE_DIR/go-mod GOCACHE=$CACHE_DIR/go-build \
  go install -ldflags "-s -w -X main.Version=v$VERSITYGW_VERSION" "github.com/versity/versitygw/cmd/versitygw@v$VERSITYGW_VERSION" \
  >"$work/build.log" 2>&1 \
  || { tail -30 "$work/build.log" >&2; exit 1; }
"$work/bin/versitygw" --version >&2
mv "$work/bin/versitygw" "$binary"
echo "$binary"
