#!/usr/bin/env bash
# The systemd base image of the test containers: Debian RELEASE (bookworm, the default, or trixie)
# from debootstrap, imported into podman (there is no registry here). Tagged by the release and this
# script's hash: a changed recipe builds anew. Prints the image name.
source "$(dirname "$0")/common.sh"
release=${1:-${DEBIAN_RELEASES[0]}}
[[ " ${DEBIAN_RELEASES[*]} " == *" $release "* ]] \
  || { log "base image: no Debian release '$release' here (known: ${DEBIAN_RELEASES[*]})"; exit 2; }
image=localhost/alcf-mlflow-globus-base:$release-$(key "$0")
if podman image exists "$image"; then echo "$image"; exit 0; fi

log "base image: building $image (debootstrap, about a minute)"
rootfs=$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,dbus,python3,python3-apt,ca-certificates,iproute2,procps,curl,gnupg \
  "$release" "$rootfs" http://deb.debian.org/debian >"$rootfs.log" 2>&1 \
  || { tail -20 "$rootfs.log" >&2; exit 1; }
rm -f "$rootfs.log"
cat > "$rootfs/etc/apt/sources.list" <<LIST
deb http://deb.debian.org/debian $release main
deb http://deb.debian.org/debian $release-updates main
deb http://deb.debian.org/debian-security $release-security main
LIST
# Units that only make sense on a real console, hardware or kernel (trixie's modules-load fails in a container).
for unit in getty@tty1.service console-getty.service systemd-udevd.service systemd-firstboot.service \
  systemd-modules-load.service; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | podman import --quiet --change 'CMD ["/lib/systemd/systemd"]' \
  --change 'STOPSIGNAL SIGRTMIN+3' - "$image" >/dev/null
echo "$image"
