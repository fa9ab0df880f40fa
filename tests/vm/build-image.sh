#!/usr/bin/env bash
# Build (or reuse) the Debian 12 guest image for tests/vm_e2e.rs: a debootstrapped root file
# system with systemd as PID 1, its own kernel and initrd (the host's /boot may be empty),
# openssh-server, nftables and systemd-networkd, turned into a raw ext4 disk with
# `mkfs.ext4 -d` (no loop mounts). Needs root, debootstrap, e2fsprogs and openssh-client.
#
#   tests/vm/build-image.sh OUT_DIR      prints the image directory on its last line
#
# The image lives in OUT_DIR/<key>/ where key = hash of this script (which holds the package
# list and every configuration step): a changed script builds a new image, an unchanged one
# is reused at no cost. The test never writes to it (each run boots a qcow2 overlay).
#
# In the guest: 192.0.2.2/24 on the first NIC (systemd-networkd), root logs in over ssh with
# the key made here (OUT_DIR/<key>/id_ed25519, a test-only key that never leaves target/),
# user `tester` has a password (the attacker's wrong guesses need a real account to miss),
# nftables.service is enabled (its /etc/nftables.conf starts with `flush ruleset`), the
# journal is persistent, a 9p share tagged `payload` is mounted read-only at /payload.
set -euo pipefail

out=${1:?usage: build-image.sh OUT_DIR}
script=$(readlink -f "$0")
mirror=${PORTCULLIS_VM_MIRROR:-}
if [ -z "$mirror" ]; then
  # The mirror apt uses on this host (deb822 or one-line sources), else Debian's.
  mirror=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' \
    /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
    grep -oE 'https?://[^ ]+' | head -n1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
fi

# Guest packages. linux-image-amd64 brings initramfs-tools; zstd compresses the initrd.
packages=(systemd systemd-sysv udev dbus linux-image-amd64 zstd kmod
  openssh-server nftables iproute2 procps)

key=$(cat "$script" | sha256sum | cut -c1-16)
dir="$out/$key"
if [ -f "$dir/done" ]; then
  echo "$dir"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "build-image.sh: debootstrap needs root" >&2
  exit 1
fi
mkdir -p "$out"
work=$(mktemp -d "$out/build.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
root="$work/root"
t0=$(date +%s)

echo "==> debootstrap bookworm from $mirror" >&2
include=$(IFS=,; echo "${packages[*]}")
debootstrap --variant=minbase --include="$include" bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 40 "$work/debootstrap.log" >&2
  exit 1
}
t1=$(date +%s)

echo "==> configure guest" >&2
echo portcullis-vm >"$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 portcullis-vm\n' >"$root/etc/hosts"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$root/etc/fstab"
printf 'payload /payload 9p trans=virtio,version=9p2000.L,ro,nofail,x-systemd.device-timeout=5s 0 0\n' >>"$root/etc/fstab"
mkdir -p "$root/payload"
printf 'deb %s bookworm main\n' "$mirror" >"$root/etc/apt/sources.list"
# A fixed machine id: no first-boot logic, and the persistent journal directory is stable.
printf '0123456789abcdef0123456789abcdef\n' >"$root/etc/machine-id"
mkdir -p "$root/var/log/journal"

mkdir -p "$root/etc/systemd/network"
cat >"$root/etc/systemd/network/10-test.network" <<'EOF'
[Match]
Name=en* eth*

[Network]
Address=192.0.2.2/24
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
systemctl --root="$root" enable systemd-networkd.service nftables.service >/dev/null 2>&1
# Nothing periodic may run during a test.
systemctl --root="$root" mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
  fstrim.timer systemd-networkd-wait-online.service >/dev/null 2>&1 || true

# ssh: root by the test key only, `tester` by password.
ssh-keygen -q -t ed25519 -N '' -C portcullis-vm-test -f "$work/id_ed25519"
install -d -m 700 "$root/root/.ssh"
install -m 600 "$work/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
cat >"$root/etc/ssh/sshd_config.d/test.conf" <<'EOF'
PermitRootLogin prohibit-password
PasswordAuthentication yes
UseDNS no
EOF
chroot "$root" useradd -m -s /bin/sh tester
echo 'tester:correct-horse-battery' | chroot "$root" chpasswd

# The kernel and initrd the guest installed, next to the disk.
cp "$root"/boot/vmlinuz-* "$work/vmlinuz"
cp "$root"/boot/initrd.img-* "$work/initrd.img"
rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/*_Packages

echo "==> mkfs.ext4 -d" >&2
truncate -s 3G "$work/disk.raw"
mkfs.ext4 -q -F -L root -d "$root" "$work/disk.raw"
t2=$(date +%s)
printf 'debootstrap_s=%s image_s=%s mirror=%s\n' "$((t1 - t0))" "$((t2 - t1))" "$mirror" >"$work/build-times"
cat "$work/build-times" >&2

rm -rf "$root"
rm -rf "$dir"
touch "$work/done"
mv "$work" "$dir"
trap - EXIT
# Older images (other keys) are dead weight.
for old in "$out"/*/; do
  case "$old" in "$dir/" | "$out"/build.*) ;; *) rm -rf "$old" ;; esac
done
echo "$dir"
