#!/usr/bin/env bash
# Runs every check and test: formatting, clippy, unit tests, machine tests and the real-guest tests on KVM.
# Real-guest tests fail when /dev/kvm is missing, unless DEVMODEL_SKIP_KVM=1 is set.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The SDL window is behind a cargo feature; lint it too (its Xvfb test builds the binary with it).
cargo clippy -p devmodel --features sdl --all-targets -- -D warnings
cargo build -p devmodel --bin devmodel
cargo test --workspace
