#!/usr/bin/env bash
# Builds the Hourglass guest image from Debian packages only:
#   vmlinuz      the linux-image-*-cloud-amd64 kernel
#   initrd.img   busybox initramfs: insmods the virtio drivers, boots /dev/vda if attached
#                (switch_root), otherwise runs the same system straight from the initramfs
#   rootfs.qcow2 base disk (symlink to rootfs-<hash>.qcow2) that per-sandbox overlays back onto
#   manifest.json inputs hash + package versions
# The guest runs qemu-guest-agent on the virtio-serial port org.qemu.guest_agent.0, so one image
# serves the qemu driver, libvirt and (by mirroring) Proxmox.
#
# Cached: with unchanged inputs (package versions + this script) a second run does nothing.
# Usage: scripts/build-guest-image.sh [--force]     (npm run image:build)
# Env:   HOURGLASS_GUEST_IMAGE_DIR  output dir (default <repo>/.images/guest)
set -euo pipefail

SCRIPT_PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
REPO="$(cd "$(dirname "$SCRIPT_PATH")/.." && pwd)"
OUT="${HOURGLASS_GUEST_IMAGE_DIR:-$REPO/.images/guest}"
CACHE="$REPO/.images/cache"
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

# Drivers the guest needs, in no particular order: dependencies are resolved from each .ko.
# virtio_mmio: microvm has no PCI; virtio_blk: the root disk; virtio_console: the agent port.
GUEST_MODULES=(virtio_mmio virtio_blk virtio_console)
AGENT_PORT=org.qemu.guest_agent.0
ROOTFS_SIZE=512M

log() { echo "image: $*" >&2; }
die() { echo "image: error: $*" >&2; exit 1; }

for tool in apt-get apt-cache dpkg-deb cpio gzip mkfs.ext4 qemu-img ldd sha256sum; do
  command -v "$tool" >/dev/null || die "$tool not found; run scripts/install-vm-deps.sh"
done

candidate_version() {
  # No early `exit` in awk: with pipefail, apt-cache would die of SIGPIPE.
  apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ && !v { v = $2 } END { print v }'
}

# apt-cache knows nothing until `apt-get update` has run once on this machine.
if [[ -z "$(candidate_version busybox-static)" || "$(candidate_version busybox-static)" == "(none)" ]]; then
  if [[ $(id -u) -eq 0 ]]; then
    log "package lists empty; running apt-get update"
    apt-get update -qq
  else
    die "apt-cache knows no busybox-static; run 'apt-get update' as root first"
  fi
fi

KERNEL_PKG="$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
  awk '/Depends: linux-image-/ && !v { v = $2 } END { print v }')"
[[ -n "$KERNEL_PKG" ]] || die "cannot resolve linux-image-cloud-amd64 to a kernel package"
# One apt-cache call for all three: each costs ~0.5 s, and a cache hit should be quick.
VERSIONS="$(apt-cache policy "$KERNEL_PKG" busybox-static qemu-guest-agent 2>/dev/null \
  | awk '/^[^ ]/ { pkg = $1; sub(/:$/, "", pkg) } /Candidate:/ { print pkg, $2 }')"
version_of() { awk -v p="$1" '$1 == p { print $2 }' <<<"$VERSIONS"; }
KERNEL_VER="$(version_of "$KERNEL_PKG")"
BUSYBOX_VER="$(version_of busybox-static)"
QGA_VER="$(version_of qemu-guest-agent)"
for v in "$KERNEL_VER" "$BUSYBOX_VER" "$QGA_VER"; do
  [[ -n "$v" && "$v" != "(none)" ]] ||
    die "a package has no candidate version (kernel=$KERNEL_VER busybox=$BUSYBOX_VER qga=$QGA_VER)"
done

INPUTS="script=$(sha256sum "$SCRIPT_PATH" | cut -d' ' -f1)
$KERNEL_PKG=$KERNEL_VER
busybox-static=$BUSYBOX_VER
qemu-guest-agent=$QGA_VER"
INPUTS_HASH="$(printf '%s' "$INPUTS" | sha256sum | cut -d' ' -f1)"

if [[ $FORCE -eq 0 && -f "$OUT/manifest.json" ]] && grep -q "\"inputsHash\": \"$INPUTS_HASH\"" "$OUT/manifest.json" \
  && [[ -s "$OUT/vmlinuz" && -s "$OUT/initrd.img" && -s "$OUT/rootfs.qcow2" ]]; then
  log "up to date (inputs ${INPUTS_HASH:0:12}), nothing to do: $OUT"
  exit 0
fi

log "building in $OUT (inputs ${INPUTS_HASH:0:12})"
mkdir -p "$CACHE/debs" "$OUT"
WORK="$(mktemp -d "$REPO/.images/build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# apt-get download names files with the epoch's colon escaped as %3a.
deb_path() { echo "$CACHE/debs/${1}_${2//:/%3a}_amd64.deb"; }
fetch_deb() {
  local pkg=$1 ver=$2 file
  file="$(deb_path "$pkg" "$ver")"
  if [[ ! -s "$file" ]]; then
    log "downloading $pkg=$ver"
    # Sandbox user root: the _apt user cannot write into a root-owned cache dir.
    (cd "$CACHE/debs" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >/dev/null)
  fi
  [[ -s "$file" ]] || die "download of $pkg=$ver did not produce $file"
  mkdir -p "$WORK/pkg/$pkg"
  dpkg-deb -x "$file" "$WORK/pkg/$pkg"
}
fetch_deb "$KERNEL_PKG" "$KERNEL_VER"
fetch_deb busybox-static "$BUSYBOX_VER"
fetch_deb qemu-guest-agent "$QGA_VER"

KPKG="$WORK/pkg/$KERNEL_PKG"
KERNEL_RELEASE="$(ls "$KPKG/lib/modules")"
VMLINUZ="$(ls "$KPKG"/boot/vmlinuz-*)"

# ---- the guest's file tree (used for both the initramfs and the root disk) ----
ROOT="$WORK/root"
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,lib/modules,proc,sys,dev,run,tmp,root,etc/init.d,mnt,newroot,var}
chmod 1777 "$ROOT/tmp"
ln -s ../run "$ROOT/var/run" # qemu-ga keeps its state under /var/run

install -m 0755 "$WORK/pkg/busybox-static/bin/busybox" "$ROOT/bin/busybox"
while read -r applet; do
  [[ -e "$ROOT/$applet" || "$applet" == bin/busybox ]] && continue
  mkdir -p "$ROOT/$(dirname "$applet")"
  ln -s /bin/busybox "$ROOT/$applet"
done < <("$ROOT/bin/busybox" --list-full)

install -m 0755 "$WORK/pkg/qemu-guest-agent/usr/sbin/qemu-ga" "$ROOT/usr/sbin/qemu-ga"
# qemu-ga is dynamically linked: copy its libraries (resolved on this Debian host) and the loader.
LDD_OUT="$(ldd "$ROOT/usr/sbin/qemu-ga")"
if grep -q 'not found' <<<"$LDD_OUT"; then
  die "qemu-ga needs libraries this host lacks (run scripts/install-vm-deps.sh):
$(grep 'not found' <<<"$LDD_OUT")"
fi
while read -r lib; do
  mkdir -p "$ROOT/$(dirname "$lib")"
  cp -L "$lib" "$ROOT/$lib"
done < <(grep -oE '/[^ ]+\.so[^ ]*' <<<"$LDD_OUT" | sort -u)

# Modules: copy each with its dependencies (read from the .ko's modinfo "depends=" field;
# the package ships no modules.dep) and record a load order, dependencies first.
declare -A MOD_PATH=()
while read -r ko; do MOD_PATH[$(basename "$ko" .ko)]="$ko"; done < <(find "$KPKG/lib/modules" -name '*.ko')
LOAD_ORDER=()
declare -A SEEN=()
add_module() {
  local name=${1//-/_} path deps dep
  [[ -n "${SEEN[$name]:-}" ]] && return
  SEEN[$name]=1
  path="${MOD_PATH[$name]:-}"
  [[ -n "$path" ]] || die "module $name not in $KERNEL_PKG (built in? then drop it from GUEST_MODULES)"
  deps="$(tr '\0' '\n' <"$path" | sed -n 's/^depends=//p' | sed -n 1p)"
  for dep in ${deps//,/ }; do add_module "$dep"; done
  cp "$path" "$ROOT/lib/modules/$name.ko"
  LOAD_ORDER+=("$name")
}
for m in "${GUEST_MODULES[@]}"; do add_module "$m"; done
printf '%s\n' "${LOAD_ORDER[@]}" >"$ROOT/lib/modules/load-order"

echo "root:x:0:0:root:/root:/bin/sh" >"$ROOT/etc/passwd"
echo "root:x:0:" >"$ROOT/etc/group"
echo "sandbox" >"$ROOT/etc/hostname"
printf 'NAME="Hourglass guest"\nID=hourglass\nVERSION_ID=%s\n' "${INPUTS_HASH:0:12}" >"$ROOT/etc/os-release"

# Initramfs entry point. PID 1 until it execs busybox init (from the disk or from here).
cat >"$ROOT/init" <<'EOF'
#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# The cpio has no /dev/console node (building it needs no root), so attach stdio now.
exec </dev/console >/dev/console 2>&1
for m in $(cat /lib/modules/load-order); do
  insmod "/lib/modules/$m.ko" || echo "init: insmod $m failed"
done
# A virtio block device has virtio device id 2; only then is a root disk worth waiting for.
if grep -qx 0x0002 /sys/bus/virtio/devices/*/device 2>/dev/null; then
  i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
  if mount -t ext4 /dev/vda /newroot; then
    umount /proc /sys
    mount --move /dev /newroot/dev
    exec switch_root /newroot /sbin/init
  fi
  echo "init: cannot mount /dev/vda; running from the initramfs"
fi
exec /sbin/init
EOF
chmod 0755 "$ROOT/init"

QGA="/usr/sbin/qemu-ga --method=virtio-serial --path=/dev/virtio-ports/$AGENT_PORT"
cat >"$ROOT/etc/inittab" <<EOF
::sysinit:/etc/init.d/rcS
::respawn:/usr/bin/env HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin $QGA
::shutdown:/bin/umount -a -r
EOF

cat >"$ROOT/etc/init.d/rcS" <<EOF
#!/bin/sh
# Booted from the disk, /init handed over only /dev; from the initramfs, all three are mounted.
[ -e /proc/self ] || mount -t proc proc /proc
[ -d /sys/kernel ] || mount -t sysfs sysfs /sys
[ -c /dev/null ] || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
hostname -F /etc/hostname
ip link set lo up 2>/dev/null
# No udev: make /dev/virtio-ports/<name> links ourselves. The host sends port names after the
# driver loads, so wait (up to ~5 s) for the agent's port to be named.
mkdir -p /dev/virtio-ports
i=0
while [ \$i -lt 100 ]; do
  for p in /sys/class/virtio-ports/*; do
    [ -s "\$p/name" ] && ln -sf "../\${p##*/}" "/dev/virtio-ports/\$(cat "\$p/name")"
  done
  [ -e /dev/virtio-ports/$AGENT_PORT ] && break
  sleep 0.05; i=\$((i+1))
done
[ -e /dev/virtio-ports/$AGENT_PORT ] || echo "rcS: no virtio port named $AGENT_PORT"
EOF
chmod 0755 "$ROOT/etc/init.d/rcS"

# ---- outputs ----
STAGE="$WORK/out"
mkdir -p "$STAGE"
cp "$VMLINUZ" "$STAGE/vmlinuz"
(cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | gzip -6 >"$STAGE/initrd.img"

# No root tools needed: mkfs.ext4 -d fills the filesystem from a directory.
truncate -s "$ROOTFS_SIZE" "$WORK/rootfs.raw"
# Inode tables initialised now: otherwise every new guest spends its first minutes in ext4lazyinit.
mkfs.ext4 -q -F -L hourglass-root -E root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0 -d "$ROOT" "$WORK/rootfs.raw"
ROOTFS_NAME="rootfs-${INPUTS_HASH:0:12}.qcow2"
qemu-img convert -q -O qcow2 "$WORK/rootfs.raw" "$STAGE/$ROOTFS_NAME"

cat >"$STAGE/manifest.json" <<EOF
{
  "inputsHash": "$INPUTS_HASH",
  "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "kernelPackage": "$KERNEL_PKG",
  "kernelVersion": "$KERNEL_VER",
  "kernelRelease": "$KERNEL_RELEASE",
  "busyboxVersion": "$BUSYBOX_VER",
  "qemuGuestAgentVersion": "$QGA_VER",
  "agentPort": "$AGENT_PORT",
  "modules": [$(printf '"%s",' "${LOAD_ORDER[@]}" | sed 's/,$//')],
  "rootfs": "$ROOTFS_NAME"
}
EOF

# Publish. Older rootfs-<hash>.qcow2 files are kept: live sandbox overlays may still back onto them.
mv -f "$STAGE/$ROOTFS_NAME" "$OUT/$ROOTFS_NAME"
ln -sfn "$ROOTFS_NAME" "$OUT/rootfs.qcow2"
mv -f "$STAGE/vmlinuz" "$OUT/vmlinuz"
mv -f "$STAGE/initrd.img" "$OUT/initrd.img"
mv -f "$STAGE/manifest.json" "$OUT/manifest.json" # last: its presence means the build finished
log "done: kernel $KERNEL_RELEASE, initrd $(du -h "$OUT/initrd.img" | cut -f1)," \
  "rootfs $(du -h "$OUT/$ROOTFS_NAME" | cut -f1) in $OUT"
