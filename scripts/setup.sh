#!/usr/bin/env bash
# Installs what templates and its tests need on Debian (only what is missing), then the npm dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v xz >/dev/null || need+=(xz-utils)
command -v zstd >/dev/null || need+=(zstd) # the .zst files index writes and fetch prefers (four times faster to unpack than xz)
command -v mkfs.ext4 >/dev/null || [ -x /usr/sbin/mkfs.ext4 ] || [ -x /sbin/mkfs.ext4 ] || need+=(e2fsprogs)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v strace >/dev/null || need+=(strace) # tests: prove a cache hit reads no image byte
command -v bzip2 >/dev/null || need+=(bzip2) # tests: content that is not a disk image is refused
command -v zip >/dev/null || need+=(zip) # the same
command -v g++ >/dev/null || need+=(g++) # npm ci: better-sqlite3 compiles from source (no prebuilt binaries here)
command -v make >/dev/null || need+=(make)
command -v python3 >/dev/null || need+=(python3)
command -v curl >/dev/null || need+=(curl) # bench: the baselines; tests: Range and hostile paths against serve
command -v htpasswd >/dev/null || need+=(apache2-utils) # tests: serve --auth with a file from htpasswd -B
command -v promtool >/dev/null || need+=(prometheus) # tests: promtool check metrics, and a real Prometheus scraping serve
command -v docker-registry >/dev/null || need+=(docker-registry) # tests: a real OCI registry (distribution 2.8) as a plain process
command -v skopeo >/dev/null || need+=(skopeo) # tests: an independent OCI client reading what push wrote
command -v minisign >/dev/null || need+=(minisign) # tests: signatures checked both ways against the real minisign
command -v chromium >/dev/null || need+=(chromium) # tests: the dashboard in a real headless browser (playwright-core drives it)
command -v mkfs.xfs >/dev/null || [ -x /usr/sbin/mkfs.xfs ] || [ -x /sbin/mkfs.xfs ] || need+=(xfsprogs) # tests: clone --copy reflinks on a loop-mounted XFS
command -v casync >/dev/null || need+=(casync) # tests: casync make gives the same .caibx as ours, and casync extract reads our chunk stores
command -v lxc >/dev/null || need+=(lxd-client) # tests: lxc (no daemon) lists, shows and exports serve's simplestreams images
command -v openssl >/dev/null || need+=(openssl) # tests: a self-signed certificate for serve --tls-cert
# Without their recommends: vagrant-libvirt and libguestfs's would bring libvirt, qemu-system and a kernel (5 minutes);
# adding boxes and listing or caching templates need none of them.
lean=()
command -v vagrant >/dev/null || lean+=(vagrant) # tests: vagrant box add/outdated/update/prune against serve's catalogues
command -v virt-builder >/dev/null || lean+=(guestfs-tools) # tests: virt-builder --list and --cache-all-templates (no appliance); about 100 s
if [ ${#need[@]} -gt 0 ] || [ ${#lean[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  [ ${#need[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
  [ ${#lean[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${lean[@]}"
fi
npm ci --no-audit --no-fund
