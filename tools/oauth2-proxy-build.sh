#!/usr/bin/env bash
# oauth2-proxy built from its Go module (no GitHub downloads here), packed the way upstream
# publishes a release: oauth2-proxy-vX.linux-amd64.tar.gz and its -sha256sum.txt. The role takes
# it as a local archive, exactly as an air-gapped site would. Prints the archive's path.
source "$(dirname "$0")/common.sh"
name=oauth2-proxy-v$OAUTH2_PROXY_VERSION.linux-amd64
dir=$CACHE_DIR/oauth2-proxy/v$OAUTH2_PROXY_VERSION
archive=$dir/$name.tar.gz
if [ -s "$archive" ] && [ -s "$archive-sha256sum.txt" ]; then echo "$archive"; exit 0; fi

command -v go >/dev/null || { echo "go is needed to build oauth2-proxy (Go >= 1.21)" >&2; exit 1; }
log "oauth2-proxy: building v$OAUTH2_PROXY_VERSION with go install (a few minutes)"
work=$(mktemp -d "$CACHE_DIR/oauth2-proxy-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/$name" "$dir"
GOBIN=$work/$name CGO_ENABLED=0 GOFLAGS=-trimpath GOTOOLCHAIN=auto \
  GOMODCACHE=$CACHE_DIR/go-mod GOCACHE=$CACHE_DIR/go-build \
  go install -ldflags "-s -w -X github.com/oauth2-proxy/oauth2-proxy/v7/pkg/version.VERSION=v$OAUTH2_PROXY_VERSION" \
  "github.com/oauth2-proxy/oauth2-proxy/v7@v$OAUTH2_PROXY_VERSION" >"$work/build.log" 2>&1 \
  || { tail -30 "$work/build.log" >&2; exit 1; }
"$work/$name/oauth2-proxy" --version >&2
tar -C "$work" --owner=0 --group=0 -czf "$work/$name.tar.gz" "$name"
(cd "$work" && sha256sum "$name.tar.gz" > "$name.tar.gz-sha256sum.txt")
mv "$work/$name.tar.gz-sha256sum.txt" "$archive-sha256sum.txt"
mv "$work/$name.tar.gz" "$archive"
echo "$archive"
