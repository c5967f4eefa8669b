#!/usr/bin/env bash
# Builds the farm's templates once (cached in farm/.cache): four ext4 templates, each a v1 and a v2 rebuilt from its directory.
#   .cache/pub/<tpl>/<v1|v2>/disk.raw   64 MiB ext4 images (~16 MiB of files from /usr, 2 MiB of random data each);
#                                       v2 has every 9th file changed, every 9th from the 4th removed and 40 files added
# `templates index` then publishes them (xz, zst and casync chunks) on every farm run, with that run's URLs.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
out="$(cd "$(dirname "$0")" && pwd)/.cache"
[ -e "$out/pub" ] && exit 0
echo "farm: building the templates (once; cached in farm/.cache)" >&2
mkdir -p "$out"
work=$(mktemp -d "$out/.work.XXXXXX")
trees=(/usr/share/doc /usr/lib/x86_64-linux-gnu /usr/share/locale /usr/bin)
n=0
for tpl in alpine debian fedora ubuntu; do
  root="$work/$tpl/root"
  mkdir -p "$root" "$work/$tpl/v1" "$work/$tpl/v2"
  files=()
  total=0
  while IFS= read -r -d '' f; do
    total=$((total + $(stat -c %s -- "$f")))
    [ "$total" -gt $((16 * 1024 * 1024)) ] && break
    mkdir -p "$root$(dirname "$f")" && cp -- "$f" "$root$f"
    files+=("$f")
  done < <(find "${trees[$n]}" -xdev -type f -size +2k -print0 2>/dev/null | sort -z)
  mkdir -p "$root/var/lib/app"
  for i in 1 2; do head -c $((1024 * 1024)) /dev/urandom > "$root/var/lib/app/data$i"; done
  truncate -s 64M "$work/$tpl/v1/disk.raw"
  mkfs.ext4 -q -F -L "$tpl" -d "$root" "$work/$tpl/v1/disk.raw"
  for i in "${!files[@]}"; do
    f="$root${files[$i]}"
    if [ $((i % 9)) -eq 0 ]; then
      printf 'v2 %s' "$i" | dd of="$f" bs=1 seek=$(($(stat -c %s -- "$f") / 2)) conv=notrunc status=none
    elif [ $((i % 9)) -eq 4 ]; then
      rm -f -- "$f"
    fi
  done
  mkdir -p "$root/opt/new"
  for i in $(seq 1 40); do head -c $(((i % 10 + 1) * 8192)) /dev/urandom > "$root/opt/new/file$i"; done
  truncate -s 64M "$work/$tpl/v2/disk.raw"
  mkfs.ext4 -q -F -L "$tpl" -d "$root" "$work/$tpl/v2/disk.raw"
  rm -rf "$root"
  n=$((n + 1))
done
mv "$work" "$out/pub"
