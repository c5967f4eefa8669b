#!/usr/bin/env bash
# Builds and caches the benchmark's images in bench/.cache/ (git-ignored); each step is skipped once done.
#   disk.raw            2 GiB raw disk, ext4, ~30% data: real files from /usr plus random files
#   disk.raw.xz         multi-block xz (xz -T0, 24 MiB blocks): decodes on every core
#   disk.raw.single.xz  single-block xz (xz -T1, preset 3 to keep the first build short): decodes on one core only
#   disk.qcow2.xz       the same disk as qcow2, multi-block xz
#   disk.raw.zst        zstd -19 --long=27 (what templates index writes by default)
#   small/N.raw.xz      ten small templates (8 MiB, 1 to 2 MiB of random data each) for `fetch A B C …`
#   big.raw.xz          8 GiB apparent size: disk.raw.xz followed by an xz stream of 6 GiB of zeros
#   nonzero-blocks      how many 4 KiB blocks of disk.raw are not all zero
#   delta/v1.raw, v2.raw a version pair: 1 GiB ext4 (~470 MiB of files), v2 rebuilt from its directory with 150 files
#                       added, 150 changed and 150 removed (mkfs.ext4 -d, as an image builder does)
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
out="$(cd "$(dirname "$0")" && pwd)/.cache"
only="${1:-}" # "delta": only the delta pair (BENCH_ONLY=delta)
mkdir -p "$out"
step() { # step NAME: true when NAME must still be built
  [ -e "$out/$1" ] && return 1
  echo "bench: building $1 (once; cached in bench/.cache)" >&2
}

if [ "$only" != delta ] && step disk.raw; then
  # About 430 MiB of real files (libraries, docs, locales) and 190 MiB of random data: ~30% of 2 GiB.
  work=$(mktemp -d "$out/.work.XXXXXX")
  total=0
  while IFS= read -r -d '' f; do
    total=$((total + $(stat -c %s -- "$f")))
    [ "$total" -gt $((430 * 1024 * 1024)) ] && break
    mkdir -p "$work/root$(dirname "$f")" && cp -- "$f" "$work/root$f"
  done < <(find /usr/lib/x86_64-linux-gnu /usr/share -xdev -type f -size +4k -print0 2>/dev/null | sort -z)
  mkdir -p "$work/root/var/random"
  for i in $(seq 1 19); do head -c $((10 * 1024 * 1024)) /dev/urandom > "$work/root/var/random/blob$i"; done
  truncate -s 2G "$work/disk.raw"
  mkfs.ext4 -q -F -L bench -d "$work/root" "$work/disk.raw"
  mv "$work/disk.raw" "$out/disk.raw" && rm -rf "$work"
fi
if [ "$only" != delta ] && step disk.raw.xz; then xz -T0 -6 -c "$out/disk.raw" > "$out/disk.raw.xz.part" && mv "$out/disk.raw.xz.part" "$out/disk.raw.xz"; fi
if [ "$only" != delta ] && step disk.raw.zst; then zstd -q -19 --long=27 -T0 -c "$out/disk.raw" > "$out/disk.raw.zst.part" && mv "$out/disk.raw.zst.part" "$out/disk.raw.zst"; fi
if [ "$only" != delta ] && step small; then
  mkdir -p "$out/small.part"
  for i in $(seq 0 9); do
    f="$out/small.part/$i.raw"
    truncate -s 8M "$f"
    head -c $(((1024 + i * 100) * 1024)) /dev/urandom | dd of="$f" conv=notrunc status=none
    xz -T0 -6 "$f"
  done
  mv "$out/small.part" "$out/small"
fi
if [ "$only" != delta ] && step big.raw.xz; then
  # Concatenated xz streams decode as one file: the disk, then zeros up to 8 GiB.
  head -c $((6 * 1024 * 1024 * 1024)) /dev/zero | xz -T0 -6 -c > "$out/zeros.xz.part"
  cat "$out/disk.raw.xz" "$out/zeros.xz.part" > "$out/big.raw.xz.part" && rm "$out/zeros.xz.part" && mv "$out/big.raw.xz.part" "$out/big.raw.xz"
fi
if [ "$only" != delta ] && step disk.qcow2.xz; then
  qemu-img convert -q -f raw -O qcow2 "$out/disk.raw" "$out/disk.qcow2.part"
  xz -T0 -6 -c "$out/disk.qcow2.part" > "$out/disk.qcow2.xz.part" && rm "$out/disk.qcow2.part" && mv "$out/disk.qcow2.xz.part" "$out/disk.qcow2.xz"
fi
if [ "$only" != delta ] && step disk.raw.single.xz; then xz -T1 -3 -c "$out/disk.raw" > "$out/disk.raw.single.xz.part" && mv "$out/disk.raw.single.xz.part" "$out/disk.raw.single.xz"; fi
if [ "$only" != delta ] && step nonzero-blocks; then
  node -e '
    const fs = require("node:fs");
    const fd = fs.openSync(process.argv[1], "r"), buf = Buffer.alloc(1 << 20), zero = Buffer.alloc(4096);
    let blocks = 0, pos = 0, n;
    while ((n = fs.readSync(fd, buf, 0, buf.length, pos)) > 0) {
      for (let o = 0; o < n; o += 4096) if (buf.compare(zero, 0, Math.min(4096, n - o), o, Math.min(o + 4096, n)) !== 0) blocks++;
      pos += n;
    }
    process.stdout.write(String(blocks));
  ' "$out/disk.raw" > "$out/nonzero-blocks.part" && mv "$out/nonzero-blocks.part" "$out/nonzero-blocks"
fi
if step delta; then
  work=$(mktemp -d "$out/.work.XXXXXX")
  mkdir -p "$work/root" "$work/delta"
  total=0
  files=()
  while IFS= read -r -d '' f; do
    total=$((total + $(stat -c %s -- "$f")))
    [ "$total" -gt $((440 * 1024 * 1024)) ] && break
    mkdir -p "$work/root$(dirname "$f")" && cp -- "$f" "$work/root$f"
    files+=("$f")
  done < <(find /usr/lib/x86_64-linux-gnu /usr/share /usr/bin -xdev -type f -size +2k -print0 2>/dev/null | sort -z)
  mkdir -p "$work/root/var/lib/app"
  for i in $(seq 1 30); do head -c $((1024 * 1024)) /dev/urandom > "$work/root/var/lib/app/data$i"; done
  truncate -s 1G "$work/delta/v1.raw"
  mkfs.ext4 -q -F -L delta -d "$work/root" "$work/delta/v1.raw"
  # v2: every 7th file changed (a few bytes in the middle), every 7th from the 3rd removed, 150 new files.
  changed=0 removed=0
  for i in "${!files[@]}"; do
    f="$work/root${files[$i]}"
    if [ $((i % 7)) -eq 0 ] && [ "$changed" -lt 150 ]; then
      printf 'v2 %s' "$i" | dd of="$f" bs=1 seek=$(($(stat -c %s -- "$f") / 2)) conv=notrunc status=none
      changed=$((changed + 1))
    elif [ $((i % 7)) -eq 3 ] && [ "$removed" -lt 150 ]; then
      rm -f -- "$f"
      removed=$((removed + 1))
    fi
  done
  mkdir -p "$work/root/opt/new"
  for i in $(seq 1 150); do head -c $(((i % 40 + 1) * 8192)) /dev/urandom > "$work/root/opt/new/file$i"; done
  truncate -s 1G "$work/delta/v2.raw"
  mkfs.ext4 -q -F -L delta -d "$work/root" "$work/delta/v2.raw"
  mv "$work/delta" "$out/delta" && rm -rf "$work"
fi
