#!/usr/bin/env bash
# A private Redis 8 for the tests of MULTIVAC_DURABILITY=replica (WAITAOF needs
# Redis >= 7.2; Debian 12 has 7.0). Debian 13's redis-server needs a newer libc
# and libstdc++ than Debian 12 has, so nothing is installed into the system:
# the trixie packages and the trixie versions of every library they load are
# unpacked (dpkg-deb -x) into .local/redis8/root/, and .local/redis8/bin/ gets
# wrappers that run the binaries through the trixie dynamic loader.
#
#   deps/redis8.sh                         # from any directory; quick when done
#   .local/redis8/bin/redis-server --version
#
# Needs the trixie apt source that deps/install.sh configures (pinned at priority
# 1, so apt never installs from it by itself). On failure: one line on stderr and
# a non-zero exit; the caller decides whether that matters.
#
# Environment:
#   REDIS8_DIR      where to put it (default <repo>/.local/redis8)
#   REDIS8_REFRESH  set to 1 to download and unpack again even if present
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=${REDIS8_DIR:-$root/.local/redis8}
arch_dir=x86_64-linux-gnu
tools=(redis-server redis-cli redis-benchmark)
# The packages and their runtime libraries (Depends of redis-tools and of those
# libraries); anything else the loader still finds outside the tree is added below.
packages=(redis-server redis-tools
  libc6 libgcc-s1 libstdc++6 libatomic1 libjemalloc2 liblzf1
  libssl3t64 libzstd1 zlib1g libsystemd0 libcap2)

say() { printf 'redis8: %s\n' "$*"; }
die() { printf 'redis8: error: %s\n' "$*" >&2; exit 1; }
trap 'die "unexpected failure (line $LINENO, status $?)"' ERR

# Done already? A stamp written last, and a wrapper that runs and says 8.x.
installed_version() {
  local out
  [[ -f $dest/.complete && -x $dest/bin/redis-server ]] || return 1
  out=$("$dest/bin/redis-server" --version 2>/dev/null) || return 1
  [[ $out =~ v=(8\.[0-9.]+) ]] || return 1
  printf '%s\n' "${BASH_REMATCH[1]}"
}
if [[ ${REDIS8_REFRESH:-} != 1 ]] && v=$(installed_version); then
  say "redis $v present in $dest"
  exit 0
fi

[[ $(uname -m) == x86_64 ]] || die "only x86_64 is supported (this is $(uname -m))"
for tool in apt-get apt-cache dpkg-deb dpkg-query; do
  command -v "$tool" >/dev/null || die "$tool not found: this script needs a Debian system"
done

mkdir -p "$(dirname "$dest")" 2>/dev/null || die "cannot create $(dirname "$dest")"
# One run at a time (two would unpack into each other's staging directory).
if command -v flock >/dev/null; then
  exec 9>"$dest.lock"
  flock -w 600 9 || die "another deps/redis8.sh holds $dest.lock for 10 minutes"
  if [[ ${REDIS8_REFRESH:-} != 1 ]] && v=$(installed_version); then
    say "redis $v present in $dest (made by a concurrent run)"
    exit 0
  fi
fi

# --- the trixie package lists -----------------------------------------------------
in_trixie() { apt-cache show "$1/trixie" >/dev/null 2>&1; }
if ! in_trixie redis-server; then
  grep -rqsw trixie /etc/apt/sources.list /etc/apt/sources.list.d/ ||
    die "no Debian 13 (trixie) apt source is configured: run deps/install.sh as root first"
  ((EUID == 0)) || die "the apt lists lack trixie and apt-get update needs root: run as root"
  say "apt-get update (the package lists lack trixie)"
  apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed (try it by hand to see why)"
  in_trixie redis-server || die "apt-get update done but trixie still has no redis-server"
fi

# --- download and unpack ------------------------------------------------------------
stage=$dest.tmp.$$
trap 'rm -rf "$stage"' EXIT
rm -rf "$stage"
mkdir -p "$stage/debs" "$stage/root" "$stage/bin" 2>/dev/null || die "cannot create $stage"
log=$stage/apt.log
tree=$stage/root
got=()

fetch() {  # fetch PACKAGE...: download the trixie versions and unpack them
  local p deb
  (cd "$stage/debs" && apt-get download -q "${@/%//trixie}") >"$log" 2>&1 ||
    die "apt-get download ${*} failed: $(grep -E '^(E|Err):' "$log" | head -1)"
  for p in "$@"; do
    deb=$(compgen -G "$stage/debs/${p}_*.deb" | head -1) || true
    [[ -n $deb ]] || die "apt-get download did not produce a .deb for $p"
    dpkg-deb -x "$deb" "$tree" || die "dpkg-deb -x $deb failed"
    got+=("$p")
  done
}
say "downloading ${#packages[@]} packages from trixie"
fetch "${packages[@]}"

loader=$tree/usr/lib/$arch_dir/ld-linux-x86-64.so.2
[[ -x $loader ]] || loader=$tree/lib/$arch_dir/ld-linux-x86-64.so.2
[[ -x $loader ]] || die "no ld-linux-x86-64.so.2 in the trixie libc6"
libpath=$tree/usr/lib/$arch_dir:$tree/lib/$arch_dir

# Sonames the trixie loader does not find in the tree ("not found", or found in
# the system's /lib): "soname<TAB>system path or empty".
outside() {
  local exe
  for exe in "${tools[@]}"; do
    "$loader" --library-path "$libpath" --list "$tree/usr/bin/$exe" 2>&1 || true
  done | awk -v tree="$tree" '
    $2 == "=>" && $3 == "not" { print $1 "\t"; next }
    $2 == "=>" && index($3, tree "/") != 1 && $3 ~ /^\// { print $1 "\t" $3 }' | sort -u
}

# The trixie package for a soname: the Debian 12 package that owns the system's copy
# (or a name guessed from the soname), under the same name or with t64 (trixie's
# 64-bit time_t rename).
package_for() {
  local soname=$1 path=$2 owner="" base=${1%%.so*} cand
  if [[ -n $path ]]; then
    for cand in "$path" "$(readlink -f "$path")" "${path#/usr}" "/usr${path#/usr}"; do
      owner=$(dpkg-query -S "$cand" 2>/dev/null | head -1 | cut -d: -f1) && [[ -n $owner ]] && break
    done
  fi
  if [[ -z $owner ]]; then
    # libfoo.so.1 -> libfoo1 (or libfoo-1 below)
    owner="$base${soname##*.so.}"
  fi
  # One apt-cache call (each costs seconds here): the first candidate trixie has.
  apt-cache madison "$owner" "${owner}t64" "${owner%t64}" "$base-${soname##*.so.}" 2>/dev/null |
    awk -F' *[|] *' '$3 ~ / trixie\// { sub(/^ +/, "", $1); print $1; exit }' | grep .
}

for round in 1 2 3 4 5; do
  missing=$(outside)
  [[ -z $missing ]] && break
  more=()
  while IFS=$'\t' read -r soname path; do
    p=$(package_for "$soname" "$path") ||
      die "the trixie redis needs $soname and no trixie package for it was found"
    [[ " ${got[*]} ${more[*]} " == *" $p "* ]] &&
      die "$soname is still loaded from ${path:-nowhere} after unpacking trixie's $p"
    more+=("$p")
  done <<<"$missing"
  say "adding ${more[*]} (for $(cut -f1 <<<"$missing" | paste -sd " "))"
  fetch "${more[@]}"
done
[[ -z $(outside) ]] || die "libraries still loaded from outside the tree after 5 rounds: $(outside | cut -f1 | tr '\n' ' ')"

# --- wrappers -------------------------------------------------------------------------
loader_rel=${loader#"$tree/"}
for exe in "${tools[@]}"; do
  [[ -x $tree/usr/bin/$exe ]] || die "the trixie packages have no usr/bin/$exe"
  cat >"$stage/bin/$exe" <<EOF
#!/bin/sh
# Made by deps/redis8.sh: Debian 13's $exe through Debian 13's dynamic loader.
here=\$(dirname "\$(readlink -f "\$0")") || exit 127
root=\$here/../root
exec "\$root/$loader_rel" --library-path "\$root/usr/lib/$arch_dir:\$root/lib/$arch_dir" \\
  "\$root/usr/bin/$exe" "\$@"
EOF
  chmod +x "$stage/bin/$exe"
done

out=$("$stage/bin/redis-server" --version 2>&1) || die "the unpacked redis-server does not run: $out"
[[ $out =~ v=(8\.[0-9.]+) ]] || die "the unpacked redis-server is not 8.x: $out"
version=${BASH_REMATCH[1]}
"$stage/bin/redis-cli" --version >/dev/null 2>&1 || die "the unpacked redis-cli does not run"

# Publish: the wrappers find the tree relative to themselves, so the move is safe.
rm -f "$log"
printf '%s\n' "${got[@]}" >"$stage/packages"
rm -rf "$dest"
mv "$stage" "$dest"
touch "$dest/.complete"
trap - EXIT
say "redis $version unpacked in $dest (${#got[@]} packages)"
