#!/usr/bin/env bash
# Installs what the qemu and libvirt drivers and scripts/build-guest-image.sh need (Debian).
# Idempotent: packages already installed are left as they are.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
  qemu-system-x86 qemu-utils          # the VMs, qemu-img overlays
  busybox-static cpio e2fsprogs gzip  # guest initramfs and base disk (mkfs.ext4 -d)
  qemu-guest-agent                    # pulls in the shared libraries copied into the guest
  libvirt-daemon-system libvirt-clients
  ca-certificates
)

SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO="sudo"

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# apt-get update always: the image build resolves the newest kernel from the package lists.
$SUDO apt-get update -qq
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "install-vm-deps: installing ${missing[*]}"
  # No systemd in containers: package scripts that start services may complain; that is harmless.
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "install-vm-deps: all packages present"
fi
