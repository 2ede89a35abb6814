#!/usr/bin/env bash
# Build a local Debian bookworm base image with Python (python3, python3-venv) for machines
# that cannot pull from a registry, and import it into podman. Cached: nothing is done when
# the image already exists (pass --rebuild to build it anew).
#
#   containers/build-base-image.sh [--rebuild] [IMAGE]      default IMAGE: localhost/docjobs-base:bookworm
#
# The Debian mirror is the one apt already uses on this machine (DEBIAN_MIRROR overrides it).
set -euo pipefail

rebuild=0
if [ "${1:-}" = "--rebuild" ]; then
  rebuild=1
  shift
fi
image="${1:-localhost/docjobs-base:bookworm}"
suite=bookworm
packages=python3,python3-venv,ca-certificates

if [ "$rebuild" = 0 ] && podman image exists "$image"; then
  echo "base image $image: present (cached)"
  exit 0
fi

mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  # deb822 (URIs: ...) first, then one-line sources (deb URL suite ...): the first Debian archive.
  mirror="$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)"
fi
if [ -z "$mirror" ]; then
  mirror="$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"

rootfs="$(mktemp -d /var/tmp/docjobs-base.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
echo "base image $image: debootstrap $suite from $mirror"
debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
  tail -n 20 "$rootfs.log" >&2
  rm -f "$rootfs.log"
  exit 1
}
rm -f "$rootfs.log"
# Keep the image small: apt's downloaded packages and lists are rebuilt by `apt-get update`.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  --quiet - "$image" >/dev/null
echo "base image $image: built"
