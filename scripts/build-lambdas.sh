#!/usr/bin/env bash
# Release zips for every function with cargo-lambda: arm64 (Graviton) when the
# aarch64 standard library can be installed, x86-64 otherwise. Prints each
# binary's size and its zip's size.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
FUNCTIONS=(intake transform post retry reconcile)
ARCH=--arm64
if ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
  if ! rustup target add aarch64-unknown-linux-gnu >&2; then
    echo "build: the aarch64 target could not be installed; building x86-64 instead" >&2
    ARCH=--x86-64
  fi
fi
PKGS=()
for f in "${FUNCTIONS[@]}"; do PKGS+=(-p "$f"); done
# One invocation for all five: they share one feature set, so shared crates build once.
cargo lambda build --release "$ARCH" --output-format zip --locked "${PKGS[@]}"
echo
python3 - "${ARCH#--}" "${FUNCTIONS[@]}" <<'PY'
import os, sys, zipfile
arch, functions = sys.argv[1], sys.argv[2:]
print(f"{'function':<10} {'arch':<7} {'bootstrap (bytes)':>18} {'zip (bytes)':>12}")
for f in functions:
    z = f"target/lambda/{f}/bootstrap.zip"
    size = zipfile.ZipFile(z).getinfo("bootstrap").file_size
    print(f"{f:<10} {arch:<7} {size:>18,} {os.path.getsize(z):>12,}")
PY
