#!/usr/bin/env bash
# Build the Debian package: the release binary, then the files it writes about itself
# (man pages, completions, commented portcullis.toml) under target/dist/, then cargo-deb.
# Prints the path of the .deb it wrote (under target/debian/) as its last line.
# cargo-deb comes from PATH, ~/.cargo/bin or target/tools/bin (installed there when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
case "$target" in /*) ;; *) target=$root/$target ;; esac

export PATH="$PATH:$HOME/.cargo/bin:$target/tools/bin"
if ! command -v cargo-deb >/dev/null 2>&1; then
    echo "build-deb: cargo-deb missing, installing it into $target/tools" >&2
    cargo install --locked cargo-deb --version 3.8.0 --root "$target/tools" >&2
fi

nice cargo build --release --locked --bin portcullis >&2
# Cargo.toml's assets name target/dist/ relative to the source tree, wherever the build went.
rm -rf "$root/target/dist"
"$target/release/portcullis" dist-files "$root/target/dist" >&2
mkdir -p "$target/debian"
# cargo-deb prints the path of the package it wrote on stdout.
deb=$(cargo deb --no-build --locked --output "$target/debian/")
deb=$(printf '%s\n' "$deb" | tail -n1)
if [ ! -f "$deb" ]; then
    echo "build-deb: cargo deb wrote no package (said: $deb)" >&2
    exit 1
fi
echo "$deb"
