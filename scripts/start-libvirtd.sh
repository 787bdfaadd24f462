#!/usr/bin/env bash
# Start virtlogd + libvirtd without systemd (CI containers, dev machines), idempotently.
# Usage: scripts/start-libvirtd.sh [timeout-seconds]   (default 60)
set -euo pipefail

timeout_s="${1:-${HOURGLASS_LIBVIRTD_TIMEOUT:-60}}"
uri="${HOURGLASS_LIBVIRT_URI:-qemu:///system}"

for bin in virsh libvirtd virtlogd; do
  if ! command -v "$bin" >/dev/null 2>&1; then
    echo "start-libvirtd: $bin not found (apt-get install libvirt-daemon-system libvirt-clients)" >&2
    exit 1
  fi
done

# The daemons create their sockets here; without systemd nothing else makes the directory.
mkdir -p /run/libvirt

# udev gives /dev/kvm to group kvm (0660) on a normal host; without udev (containers) it stays
# root-only. libvirt's capability probe still sees KVM, but its QEMU user cannot open it, so libvirtd
# judges its capability cache stale and re-probes QEMU on every call (define: 30+ s instead of 20 ms).
# Domains still run TCG (type='qemu') unless HOURGLASS_LIBVIRT_DOMAIN_TYPE=kvm.
if [[ -c /dev/kvm && $EUID -eq 0 ]] && getent group kvm >/dev/null && [[ "$(stat -c %G /dev/kvm)" != kvm ]]; then
  chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
fi

# pgrep -x matches the process name exactly, so a shell script mentioning "libvirtd" is not taken for it.
if ! pgrep -x virtlogd >/dev/null; then
  # libvirtd hands QEMU's stdout/stderr to virtlogd: without it every domain start fails.
  virtlogd -d
fi
if ! pgrep -x libvirtd >/dev/null; then
  libvirtd -d
fi

# The first call probes QEMU's capabilities (~8 s on TCG), so poll generously.
deadline=$((SECONDS + timeout_s))
until virsh -c "$uri" version >/dev/null 2>&1; do
  if ((SECONDS >= deadline)); then
    echo "start-libvirtd: libvirtd did not answer on $uri within ${timeout_s}s" >&2
    virsh -c "$uri" version >&2 || true
    exit 1
  fi
  sleep 0.5
done
echo "start-libvirtd: libvirtd answers on $uri"
