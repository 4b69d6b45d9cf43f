#!/usr/bin/env bash
# The systemd base image of every test container: Debian bookworm from debootstrap, imported into
# podman (there is no registry here). Tagged by this script's hash: a changed recipe builds anew.
# Prints the image name.
source "$(dirname "$0")/common.sh"
image=localhost/alcf-mlflow-globus-base:$(key "$0")
if podman image exists "$image"; then echo "$image"; exit 0; fi

log "base image: building $image (debootstrap, about a minute)"
rootfs=$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,dbus,python3,python3-apt,ca-certificates,iproute2,procps,curl,gnupg \
  bookworm "$rootfs" http://deb.debian.org/debian >"$rootfs.log" 2>&1 \
  || { tail -20 "$rootfs.log" >&2; exit 1; }
rm -f "$rootfs.log"
cat > "$rootfs/etc/apt/sources.list" <<'LIST'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
LIST
# Units that only make sense on a real console or hardware.
for unit in getty@tty1.service console-getty.service systemd-udevd.service systemd-firstboot.service; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | podman import --quiet --change 'CMD ["/lib/systemd/systemd"]' \
  --change 'STOPSIGNAL SIGRTMIN+3' - "$image" >/dev/null
echo "$image"
