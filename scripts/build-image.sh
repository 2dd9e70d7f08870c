#!/usr/bin/env bash
# Build the lab/molecule base image localhost/prodgate-debian:12 with debootstrap (no registry here).
# Usage: scripts/build-image.sh [--force]
# The image carries a label with the digest of its recipe; a changed recipe means a rebuild.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
image=${PRODGATE_IMAGE:-localhost/prodgate-debian:12}
recipe_digest=$(cat "$here/scripts/build-image.sh" "$here/images/debian12.packages" "$here/images/debian12.download-only" | sha256sum | cut -c1-16)

if [ "${1:-}" != "--force" ] && podman image exists "$image"; then
  have=$(podman image inspect --format '{{ index .Labels "prodgate.recipe" }}' "$image" 2>/dev/null || true)
  [ "$have" = "$recipe_digest" ] && exit 0
  echo "setup: image $image was built from another recipe ($have), rebuilding"
fi

pkgs() { grep -v '^\s*#' "$1" | grep -v '^\s*$' | tr '\n' ' '; }
rootfs=$(mktemp -d /var/tmp/prodgate-rootfs.XXXXXX)
cleanup() {
  for m in dev/pts dev proc sys; do umount "$rootfs/$m" 2>/dev/null || true; done
  rm -rf "$rootfs"
}
trap cleanup EXIT

echo "setup: building $image with debootstrap (takes a few minutes, once)"
debootstrap --variant=minbase --include=python3,systemd,sudo,iproute2 bookworm "$rootfs" \
  http://deb.debian.org/debian >"$rootfs.log" 2>&1 || { tail -20 "$rootfs.log"; echo "setup: debootstrap failed, log in $rootfs.log"; exit 1; }
rm -f "$rootfs.log"

# Keep services from starting inside the chroot while packages install.
printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"; chmod +x "$rootfs/usr/sbin/policy-rc.d"
mount -t proc proc "$rootfs/proc"; mount -t sysfs sys "$rootfs/sys"
mount --bind /dev "$rootfs/dev"; mount --bind /dev/pts "$rootfs/dev/pts"
cat > "$rootfs/etc/apt/sources.list" <<'SRC'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SRC
chroot "$rootfs" /bin/sh -c "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && \
  apt-get install -y -qq --no-install-recommends $(pkgs "$here/images/debian12.packages") >/dev/null && \
  apt-get install -y -qq --no-install-recommends --download-only $(pkgs "$here/images/debian12.download-only") >/dev/null"
# Installed, not running: each role enables what its host class needs.
for svc in nginx postgresql keepalived chrony nftables; do chroot "$rootfs" systemctl disable "$svc" >/dev/null 2>&1 || true; done
chroot "$rootfs" systemctl mask systemd-resolved.service getty@tty1.service console-getty.service >/dev/null 2>&1 || true
sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/; s/^# *zh_CN.UTF-8/zh_CN.UTF-8/' "$rootfs/etc/locale.gen"
chroot "$rootfs" locale-gen >/dev/null 2>&1 || true
rm -f "$rootfs/usr/sbin/policy-rc.d"
for m in dev/pts dev proc sys; do umount "$rootfs/$m"; done
: > "$rootfs/etc/machine-id"

tar -C "$rootfs" -c . | podman import --change "LABEL prodgate.recipe=$recipe_digest" \
  --change 'CMD ["/lib/systemd/systemd"]' - "$image" >/dev/null
echo "setup: built $image ($(podman image inspect --format '{{.Size}}' "$image" | numfmt --to=iec))"
