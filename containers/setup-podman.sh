#!/usr/bin/env bash
# Make this machine run containers with Debian's podman (there is no Docker engine):
# podman, the runc runtime, podman-compose, debootstrap (for local base images), and an
# engine configuration that works inside a container-hosted machine (runc, cgroupfs, ulimits
# a nested user namespace allows). Idempotent: safe to run on every CI start.
set -euo pipefail

packages=(podman runc podman-compose debootstrap)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi

conf=/etc/containers/containers.conf
wanted='# Written by docjobs containers/setup-podman.sh.
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
'
if [ "$(cat "$conf" 2>/dev/null)" != "$(printf '%s' "$wanted")" ]; then
  mkdir -p /etc/containers
  if [ -e "$conf" ] && [ ! -e "$conf.before-docjobs" ]; then
    cp "$conf" "$conf.before-docjobs"
  fi
  printf '%s' "$wanted" >"$conf"
fi

podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}}' >/dev/null
