#!/usr/bin/env bash
# The crates as crates.io would get them. Run by .ci/run; by hand from any
# directory. Needs the crates.io index (network) for the last step.
#
# 1. Every workspace member is either published, with complete metadata
#    (description, license, readme, rust-version, keywords, categories, an
#    `mqtt-engine-` name; no placeholder repository), or `publish = false`;
#    the published set is the one listed below, so a new crate has to say
#    which it is.
# 2. Each published package carries its README and both license texts.
# 3. `cargo publish --dry-run --workspace`: packages every published crate
#    and builds each from its .crate file, the unpublished dependencies
#    (mqtt-engine-codec for mqtt-engine-session, ...) taken from the
#    packages made in the same run. Nothing is uploaded.
set -euo pipefail
cd "$(dirname "$0")/.."

published=(
  mqtt-engine-codec mqtt-engine-session mqtt-engine-router mqtt-engine-client
  mqtt-engine-tokio mqtt-engine-async-std mqtt-engine-blocking
  mqtt-engine-tls mqtt-engine-embedded mqtt-engine-cli mqtt-engine-broker
)

echo "--- metadata"
cargo metadata --format-version 1 --no-deps | python3 -c '
import json, os, sys
expected = set(sys.argv[1:])
meta = json.load(sys.stdin)
bad, seen = [], set()
for p in meta["packages"]:
    name = p["name"]
    if p["publish"] == []:
        continue
    seen.add(name)
    if not name.startswith("mqtt-engine-"):
        bad.append(f"{name}: a published name starts with mqtt-engine-")
    for key in ("description", "license", "readme", "rust_version"):
        if not p.get(key):
            bad.append(f"{name}: no {key}")
    for key in ("keywords", "categories"):
        if not p.get(key):
            bad.append(f"{name}: no {key}")
    if len(p.get("keywords") or []) > 5:
        bad.append(f"{name}: more than 5 keywords")
    if "example.invalid" in (p.get("repository") or ""):
        bad.append(f"{name}: placeholder repository")
    readme = os.path.join(os.path.dirname(p["manifest_path"]), p.get("readme") or "README.md")
    if not os.path.isfile(readme):
        bad.append(f"{name}: {readme} missing")
if seen != expected:
    bad.append(f"published {sorted(seen)}, expected {sorted(expected)}: add publish = false or list it in scripts/package-check.sh")
for b in bad:
    print("error:", b)
sys.exit(1 if bad else 0)
' "${published[@]}"

echo "--- README and licenses in each package"
for p in "${published[@]}"; do
  files=$(cargo package --list --allow-dirty -p "$p" 2>/dev/null)
  for f in README.md LICENSE-MIT LICENSE-APACHE; do
    if ! grep -qx "$f" <<<"$files"; then
      echo "error: $p packages no $f"
      exit 1
    fi
  done
done

# The declared rust-version, where that toolchain is installed (it cannot
# be fetched on every machine; CI says when it skipped).
echo "--- rust-version"
msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
if rustup toolchain list 2>/dev/null | grep -q "^$msrv"; then
  cargo "+$msrv" check -p mqtt-engine-codec -p mqtt-engine-session -p mqtt-engine-router \
    -p mqtt-engine-client -p mqtt-engine-tokio -p mqtt-engine-async-std \
    -p mqtt-engine-blocking -p mqtt-engine-embedded -p mqtt-engine-cli
else
  echo "note: toolchain $msrv not installed; rust-version $msrv not checked"
fi

echo "--- cargo publish --dry-run"
# The packages of an earlier run share their version with this run's: Cargo
# would verify against the stale ones (seen here: mqtt-engine-async-std
# built against the run before's mqtt-engine-client, without its new items).
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
rm -rf "$target_dir/package"
# ... and so would it against the sources it extracted from the run
# before's local registry (kept under CARGO_HOME, in a directory named
# after that registry: "-<hash>").
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/mqtt-engine-*
# ... and against what it compiled from them (a registry crate of the same
# version counts as unchanged): our crates' fingerprints go, so they are
# compiled again (the workspace's own at the next build, too).
rm -rf "$target_dir"/debug/.fingerprint/mqtt-engine-*
cargo publish --dry-run --workspace --allow-dirty
