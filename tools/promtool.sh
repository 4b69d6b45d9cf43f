#!/usr/bin/env bash
# promtool (and the prometheus server beside it) from Debian's `prometheus` package, unpacked into the
# cache and never installed: installing the package would start a Prometheus on this machine. There are
# no GitHub downloads here; apt fetches the .deb and checks it against the signed archive index. Cached
# by the package's version (the candidate apt knows), so a Debian update unpacks anew beside the old.
# The tests run `promtool check rules` and `promtool test rules` with it. Prints the directory holding
# both binaries.
source "$(dirname "$0")/common.sh"
SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
candidate() { apt-cache policy prometheus 2>/dev/null | sed -n 's/^ *Candidate: *//p'; }
version=$(candidate)
if [ -z "$version" ] || [ "$version" = "(none)" ]; then
  log "promtool: apt knows no prometheus package yet; refreshing its lists"
  $SUDO apt-get update -qq
  version=$(candidate)
fi
[ -n "$version" ] && [ "$version" != "(none)" ] \
  || { log "promtool: no Debian package 'prometheus' in this machine's apt sources"; exit 1; }
dir=$CACHE_DIR/prometheus/$version
if [ -x "$dir/promtool" ] && [ -x "$dir/prometheus" ]; then echo "$dir"; exit 0; fi

log "promtool: unpacking Debian's prometheus $version (apt-get download, dpkg-deb -x; not installed)"
work=$(mktemp -d "$CACHE_DIR/prometheus-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Lists older than the mirror name a .deb the mirror no longer has: refresh them once and retry.
(cd "$work" && apt-get download -qq "prometheus=$version" >/dev/null 2>"$work/download.log") || {
  $SUDO apt-get update -qq
  version=$(candidate) dir=$CACHE_DIR/prometheus/$version
  (cd "$work" && apt-get download -qq "prometheus=$version" >/dev/null 2>"$work/download.log") \
    || { cat "$work/download.log" >&2; exit 1; }
}
dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
"$work/root/usr/bin/promtool" --version >&2
mkdir -p "$work/bin"
mv "$work/root/usr/bin/promtool" "$work/root/usr/bin/prometheus" "$work/bin/"
mkdir -p "$(dirname "$dir")"
rm -rf "$dir"
mv "$work/bin" "$dir"
echo "$dir"
