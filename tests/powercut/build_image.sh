#!/usr/bin/env bash
# Builds the guest's root disk for the power-cut test: a minimal Debian bookworm (debootstrap) with
# Debian's kernel, PostgreSQL and sqlite3, written into an ext4 image with mkfs.ext4 -d (no loop
# mount). Also extracts the kernel and initrd for qemu's direct boot. Idempotent: the result lives
# under $1 (the cache dir named by this script's hash), and "done" marks a finished build.
# Needs root (debootstrap), debootstrap and e2fsprogs. Deno and the project are NOT in this image:
# they come in on a second disk built for each run (see powercut.ts), so the image only changes
# when this script does.
set -euo pipefail
out="$1"
mirror="${POWERCUT_MIRROR:-http://deb.debian.org/debian}"
[ -f "$out/done" ] && exit 0
mkdir -p "$out"
root="$out/rootfs"
rm -rf "$root" "$out/root.img"
debootstrap --variant=minbase \
  --include=linux-image-amd64,initramfs-tools,postgresql,sqlite3,util-linux,procps,eatmydata,iproute2 \
  bookworm "$root" "$mirror"

# The guest boots straight into /sbin/powercut-init (no systemd); see tests/powercut/init.sh.
cat >"$root/etc/initramfs-tools/modules" <<'MODS'
virtio_pci
virtio_blk
virtio_console
ext4
MODS
chroot "$root" update-initramfs -u -k all
# PID 1 in the guest: mounts the tools disk (deno and the project, built for each run) and hands
# over to the project's tests/powercut/init.sh, so the image never needs rebuilding for a change
# there.
cat >"$root/sbin/powercut-init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -o remount,rw /
mount /dev/vdb /opt/queuectl
exec /bin/sh /opt/queuectl/project/tests/powercut/init.sh
INIT
chmod 755 "$root/sbin/powercut-init"
echo powercut >"$root/etc/hostname"
printf '127.0.0.1 localhost powercut\n' >"$root/etc/hosts"
# PostgreSQL: trust on the loopback; Debian's defaults otherwise (fsync=on, synchronous_commit=on).
pgconf=$(ls -d "$root"/etc/postgresql/*/main)
sed -i 's/^\(host.*127.0.0.1\/32\s*\)scram-sha-256/\1trust/; s/^\(local\s*all\s*all\s*\)peer/\1trust/; s/^\(local\s*all\s*postgres\s*\)peer/\1trust/' "$pgconf/pg_hba.conf"
cat >>"$pgconf/postgresql.conf" <<'PGC'
listen_addresses = '127.0.0.1'
shared_buffers = 64MB
PGC
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
cp "$root"/boot/vmlinuz-* "$out/vmlinuz"
cp "$root"/boot/initrd.img-* "$out/initrd.img"
mkdir -p "$root/opt/queuectl" "$root/data"
mkfs.ext4 -q -F -L pcroot -d "$root" "$out/root.img" 3G
rm -rf "$root"
touch "$out/done"
