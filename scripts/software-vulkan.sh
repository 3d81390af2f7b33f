#!/usr/bin/env bash
# A software Vulkan adapter for the WebGPU tests on machines without a GPU (this project's build machine, CI):
# Mesa 25.0.7's lavapipe from Debian bookworm-backports, unpacked with `dpkg -x` into a cache folder. Nothing is
# installed on the system and no apt source is added: apt reads a private source list and package lists under
# the cache folder. `npm test` (scripts/test.ts) finds the adapter there and points the tests at it with
# VK_ICD_FILENAMES and LD_LIBRARY_PATH.
#
# Why these packages (issue #11, tried 2026-11-28): bookworm's own Mesa 22.3 is refused by Dawn ("Vulkan
# shaderUniform*ArrayDynamicIndexing required"); 25.0.7 from backports works, with backports' libdrm2 and the
# listed bookworm libraries (~41 MB of debs). A batch-16 step takes ~0.9 s on it here; wasm needs ~0.1 s.
#
# Usage: bash scripts/software-vulkan.sh        (prints the folder; safe to run again: it reuses what is there)
# Folder: $ALEXNET_SOFTWARE_VULKAN_DIR, else ${XDG_CACHE_HOME:-~/.cache}/alexnet-software-vulkan.
set -euo pipefail

dir=${ALEXNET_SOFTWARE_VULKAN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/alexnet-software-vulkan}
icd=$dir/root/usr/share/vulkan/icd.d/lvp_icd.json
if [ -f "$icd" ] && [ -f "$dir/root/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so" ]; then
  echo "$dir"
  exit 0
fi
if [ "$(uname -s)-$(uname -m)" != Linux-x86_64 ] || ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
  echo "software-vulkan: needs Debian/Ubuntu's apt-get and dpkg on Linux x86-64 (this is $(uname -s)-$(uname -m))" >&2
  exit 1
fi

mkdir -p "$dir/lists/partial" "$dir/debs"
cat > "$dir/sources.list" <<'EOF'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-backports main
EOF
apt=(-o "Dir::Etc::sourcelist=$dir/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$dir/lists"
     -o Dir::Cache=/nonexistent -o APT::Architecture=amd64 -o APT::Architectures=amd64 -o Debug::NoLocking=1)
apt-get "${apt[@]}" -qq update
# Backports' versions where bookworm's are too old; bookworm's for the rest.
packages=(mesa-vulkan-drivers/bookworm-backports libdrm2/bookworm-backports libllvm15 libz3-4 libvulkan1 libx11-xcb1
          libxcb-dri3-0 libxcb-present0 libxcb-randr0 libxcb-sync1 libxcb-xfixes0 libxshmfence1 libwayland-client0)
# apt downloads as the _apt user where it can; a root-owned cache folder it cannot write is fine (it warns).
(cd "$dir/debs" && apt-get "${apt[@]}" -qq download "${packages[@]}" 2>&1 | grep -v 'couldn.t be accessed by user' >&2 || true)
count=$(ls "$dir/debs"/*.deb 2>/dev/null | wc -l)
if [ "$count" -ne "${#packages[@]}" ]; then
  echo "software-vulkan: downloaded $count of ${#packages[@]} packages into $dir/debs" >&2
  exit 1
fi
rm -rf "$dir/root.tmp"
mkdir -p "$dir/root.tmp"
for f in "$dir/debs"/*.deb; do dpkg -x "$f" "$dir/root.tmp"; done
rm -rf "$dir/root" && mv "$dir/root.tmp" "$dir/root"
rm -rf "$dir/debs" "$dir/lists"
echo "$dir"
