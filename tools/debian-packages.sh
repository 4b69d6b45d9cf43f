#!/usr/bin/env bash
# Debian packages the tests need on the controller; installs only what is missing.
source "$(dirname "$0")/common.sh"
# systemd: tests/unit checks quoted unit lines with systemd-analyze verify.
# sslscan: tests/lockdown scans the external_nginx scenario's TLS with it.
# mtail: tests/unit runs the external_nginx role's nginx log program over sample lines (--one_shot); its
# service does nothing until it is given logs to read.
# iptables: netavark, podman's network stack, sets up container networks with it; podman only
# recommends it, so without it every container start fails with "netavark: No such file or directory".
packages=(podman runc debootstrap uidmap fuse-overlayfs netavark aardvark-dns iptables
          git make curl ca-certificates nginx-light chromium graphviz sslscan systemd mtail)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then log "Debian packages: all present"; exit 0; fi
log "Debian packages: installing ${missing[*]}"
SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
