#!/usr/bin/env bash
# Builds every fuzz target, then runs each over its committed inputs
# (fuzz/regressions/<target>/ and fuzz/corpus/<target>/) and for a fixed
# number of further runs from a fixed seed. A regression input that crashes
# again, or a new crash within those runs, fails (libFuzzer exits non-zero
# and leaves the input in fuzz/artifacts/<target>/).
#
#   fuzz/replay.sh                 # every target, 2000 runs each
#   FUZZ_RUNS=0 fuzz/replay.sh broker files   # only the committed inputs
#
# Stable toolchain: RUSTC_BOOTSTRAP=1 lets it take cargo-fuzz's unstable flags.
set -euo pipefail
cd "$(dirname "$0")"
runs=${FUZZ_RUNS:-2000}
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^mqtt[-_]fuzz$')
fi
RUSTC_BOOTSTRAP=1 cargo fuzz build -O
triple=$(rustc -vV | sed -n 's/^host: //p')
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
  inputs=()
  for d in "regressions/$t" "corpus/$t"; do
    [ -d "$d" ] && inputs+=("$d")
  done
  # libFuzzer counts the committed inputs among its runs: these come on top.
  committed=0
  if [ "${#inputs[@]}" -gt 0 ]; then
    committed=$(find "${inputs[@]}" -type f | wc -l)
  fi
  mkdir -p "$scratch/$t" "artifacts/$t"
  printf '%-18s ' "$t"
  # New units go to the scratch directory, first in the list, not into the
  # committed corpus.
  "target/$triple/release/$t" -runs=$((committed + runs)) -seed=1 -max_len=4096 \
    -artifact_prefix="artifacts/$t/" "$scratch/$t" "${inputs[@]}" 2>"$scratch/$t.log" || {
    echo "FAILED"; tail -n 60 "$scratch/$t.log"; exit 1; }
  grep -E '^Done [0-9]+ runs' "$scratch/$t.log" || echo
done
