#!/usr/bin/env bash
# Build the lab/molecule base image localhost/prodgate-debian:12 with debootstrap (no registry here),
# and keep its bare Debian minbase root as localhost/prodgate-minbase:12: a new Debian 12 system, on
# which tests/integration/test_setup_packages.py proves that the set-up installs what the project calls.
# Usage: scripts/build-image.sh [--force]
# Both images carry a label with the digest of their recipe; a changed recipe means a rebuild.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
image=${PRODGATE_IMAGE:-localhost/prodgate-debian:12}
minbase=${PRODGATE_MINBASE_IMAGE:-localhost/prodgate-minbase:12}
recipe_digest=$(cat "$here/scripts/build-image.sh" "$here/images/debian12.packages" "$here/images/debian12.download-only" | sha256sum | cut -c1-16)

recipe_of() { podman image inspect --format '{{ index .Labels "prodgate.recipe" }}' "$1" 2>/dev/null || true; }
if [ "${1:-}" != "--force" ] && podman image exists "$image"; then
  have=$(recipe_of "$image")
  [ "$have" = "$recipe_digest" ] && [ "$(recipe_of "$minbase")" = "$recipe_digest" ] && exit 0
  if [ "$have" = "$recipe_digest" ]; then
    echo "setup: image $minbase is missing or older than $image, rebuilding both"
  else
    echo "setup: image $image was built from another recipe ($have), rebuilding"
  fi
fi

pkgs() { grep -v '^\s*#' "$1" | grep -v '^\s*$' | tr '\n' ' '; }
rootfs=$(mktemp -d /var/tmp/prodgate-rootfs.XXXXXX)
cleanup() {
  for m in dev/pts dev proc sys; do umount "$rootfs/$m" 2>/dev/null || true; done
  rm -rf "$rootfs"
}
trap cleanup EXIT

echo "setup: building $image with debootstrap (takes a few minutes, once)"
debootstrap --variant=minbase bookworm "$rootfs" \
  http://deb.debian.org/debian >"$rootfs.log" 2>&1 || { tail -20 "$rootfs.log"; echo "setup: debootstrap failed, log in $rootfs.log"; exit 1; }
rm -f "$rootfs.log"
# The bare minbase, as a new machine has it (no CMD: the set-up test says what to run).
tar -C "$rootfs" -c . | podman import -q --change "LABEL prodgate.recipe=$recipe_digest" - "$minbase" >/dev/null

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
  apt-get install -y -qq --no-install-recommends $(pkgs "$here/images/debian12.packages") && \
  apt-get install -y -qq --no-install-recommends --download-only $(pkgs "$here/images/debian12.download-only")" \
  >"$rootfs.log" 2>&1 || { tail -20 "$rootfs.log"; echo "setup: installing the image's packages failed, log in $rootfs.log"; exit 1; }
rm -f "$rootfs.log"
# Installed, not running: each role enables what its host class needs; playbooks/lab.yml starts
# sshd on lab hosts after giving each container host keys of its own (none are baked in: every
# container of the image would share them).
rm -f "$rootfs"/etc/ssh/ssh_host_*
for svc in nginx postgresql keepalived chrony nftables ssh; do chroot "$rootfs" systemctl disable "$svc" >/dev/null 2>&1 || true; done
chroot "$rootfs" systemctl mask systemd-resolved.service getty@tty1.service console-getty.service >/dev/null 2>&1 || true
sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/; s/^# *zh_CN.UTF-8/zh_CN.UTF-8/' "$rootfs/etc/locale.gen"
chroot "$rootfs" locale-gen >/dev/null 2>&1 || true
rm -f "$rootfs/usr/sbin/policy-rc.d"
for m in dev/pts dev proc sys; do umount "$rootfs/$m"; done
: > "$rootfs/etc/machine-id"

tar -C "$rootfs" -c . | podman import -q --change "LABEL prodgate.recipe=$recipe_digest" \
  --change 'CMD ["/lib/systemd/systemd"]' - "$image" >/dev/null
echo "setup: built $image ($(podman image inspect --format '{{.Size}}' "$image" | numfmt --to=iec))"
