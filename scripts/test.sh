#!/usr/bin/env bash
# The full test suite, on a fresh Debian 12 machine: installs what the tests need, then runs
# formatting, lints and every test (unit, corpus, property, CLI and network-namespace
# end-to-end tests with real nft, ipset, iptables, sshd, ssh/sshpass and hydra).
# Needs root (namespaces and firewall tests); run as root or through sudo.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/test.sh: the end-to-end tests need root (network namespaces, nft, sshd); re-run with sudo" >&2
  exit 1
fi

need_pkgs=(nftables ipset iptables iproute2 openssh-server openssh-client sshpass hydra
  fail2ban sshguard ripgrep systemd-journal-remote python3 time procps gzip util-linux
  chromium logrotate python3-paramiko nginx-light vsftpd curl prometheus tmux
  lintian binutils qemu-system-x86 qemu-utils debootstrap e2fsprogs coreutils passwd
  nats-server)
missing=()
for p in "${need_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Debian's fail2ban, openssh-server, sshguard and prometheus start their services on install; nothing
  # here may run them on the host (the tests start their own, inside network namespaces).
  # policy-rc.d answering 101 is Debian's way to say "do not start services now".
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
  if [ -n "$own_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "==> Debian package (cargo-deb installed under target/tools when missing)"
# Built once here; tests/deb_package.rs checks it and the VM test installs it.
PORTCULLIS_DEB=$(bash packaging/build-deb.sh)
export PORTCULLIS_DEB
echo "    $PORTCULLIS_DEB"
echo "==> cargo test"
cargo test --workspace --no-fail-fast 2>&1 | tee target/test.log
