#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build, run and test MultiVAC.
# Idempotent and quick when everything is already there (no network then).
#
#   deps/install.sh            # from any directory
#
# Environment:
#   MULTIVAC_TOOLS_DIR  where to put the ferretdb binary (default /usr/local/bin)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools_dir=${MULTIVAC_TOOLS_DIR:-/usr/local/bin}

say() { printf 'install: %s\n' "$*"; }
die() { printf 'install: error: %s\n' "$*" >&2; exit 1; }

packages=(
  build-essential cmake pkg-config git ca-certificates
  libuv1-dev libhiredis-dev libmongoc-dev libbson-dev
  redis-server redis-tools
  python3 python3-pytest python3-pymongo python3-redis
  curl clang-format wrk nginx-light
  clang libclang-rt-14-dev util-linux
)

# --- Debian packages ----------------------------------------------------------
missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [[ $status == installed ]] || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  say "debian packages: all ${#packages[@]} present"
else
  ((EUID == 0)) || die "missing packages (${missing[*]}) and not root: run as root or install them"
  say "debian packages: installing ${missing[*]}"
  apt-get update -qq
  # Debian's redis-server may try to start a system service: nothing here needs it.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  say "debian packages: installed"
fi

# --- llhttp >= 9.2 -------------------------------------------------------------
# Debian 12 has llhttp 8.1 only as node-llhttp's sources, and 8.1 accepts framing
# that 9.2 rejects (docs/http.md). Debian 13 ships libllhttp9.2, which depends on
# libc6 only: on Debian 12 we add a trixie source pinned so low that nothing but
# these two packages ever comes from it.
llhttp_ok() { pkg-config --atleast-version=9.2 libllhttp 2>/dev/null; }
debian_mirror() {
  local f
  for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    [[ -r $f ]] || continue
    awk '/^URIs:/ {print $2; exit} /^deb / && $2 !~ /security/ {print $2; exit}' "$f"
    return 0
  done
}
if llhttp_ok; then
  say "llhttp: $(pkg-config --modversion libllhttp) present"
else
  ((EUID == 0)) || die "llhttp >= 9.2 is missing and not root: run as root"
  codename=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
  if [[ $codename == bookworm ]]; then
    mirror=$(debian_mirror)
    [[ -n $mirror ]] || die "llhttp: no Debian mirror found in the apt sources"
    cat >/etc/apt/sources.list.d/multivac-trixie.sources <<EOF
Types: deb
URIs: $mirror
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    cat >/etc/apt/preferences.d/multivac-trixie <<'EOF'
Package: *
Pin: release n=trixie
Pin-Priority: 1

Package: libllhttp-dev libllhttp9.2
Pin: release n=trixie
Pin-Priority: 500
EOF
  fi
  say "llhttp: installing libllhttp-dev (>= 9.2)"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends libllhttp-dev >/dev/null
  llhttp_ok || die "llhttp: libllhttp-dev installed but pkg-config finds no libllhttp >= 9.2"
  say "llhttp: $(pkg-config --modversion libllhttp) installed"
fi

# --- A MongoDB-compatible server -----------------------------------------------
find_go() {
  local g
  for g in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go; do
    [[ -n $g && -x $g ]] || continue
    # "go1.26.8" -> require >= 1.24
    local v
    v=$("$g" env GOVERSION 2>/dev/null || true)
    if [[ $v =~ ^go([0-9]+)\.([0-9]+) ]] &&
       ((BASH_REMATCH[1] > 1 || (BASH_REMATCH[1] == 1 && BASH_REMATCH[2] >= 24))); then
      printf '%s\n' "$g"
      return 0
    fi
  done
  return 1
}

# A FerretDB v1.24.x binary that starts (checked with Go's build info when Go is here).
ferretdb_ok() {
  local f=$1 go
  [[ -x $f ]] && "$f" --help >/dev/null 2>&1 || return 1
  go=$(find_go) || return 0
  "$go" version -m "$f" 2>/dev/null |
    grep -Eq '^[[:space:]]+(dep|mod)[[:space:]]+github\.com/FerretDB/FerretDB[[:space:]]+v1\.24\.'
}

# deps/ferretdb is a small Go module: a main package around FerretDB's embeddable
# package, pinned by its go.mod/go.sum (`go install ...@version` does not work here).
build_ferretdb() {
  local go dest=$1 tmp
  go=$(find_go) || die "FerretDB needs Go >= 1.24 to build and none was found on PATH or in
  /usr/local/go/bin. Install Go >= 1.24 (e.g. the official tarball unpacked into /usr/local/go),
  or put a mongod on PATH, or a FerretDB v1.24 binary at $dest."
  say "ferretdb: building with $("$go" env GOVERSION) (first time takes a few minutes)"
  mkdir -p "$(dirname "$dest")"
  tmp="$dest.tmp.$$"
  (cd "$root/deps/ferretdb" && GOTOOLCHAIN=local GOFLAGS= "$go" build -trimpath -o "$tmp" .) ||
    { rm -f "$tmp"; die "ferretdb: go build failed in deps/ferretdb"; }
  mv -f "$tmp" "$dest"
}

if command -v mongod >/dev/null 2>&1; then
  say "mongodb: using $(command -v mongod)"
else
  ferretdb=$tools_dir/ferretdb
  if ferretdb_ok "$ferretdb"; then
    say "ferretdb: $ferretdb is present"
  else
    build_ferretdb "$ferretdb"
    ferretdb_ok "$ferretdb" || die "ferretdb: $ferretdb was built but does not start (try: $ferretdb --help)"
    say "ferretdb: installed $ferretdb"
  fi
fi
# Redis 8 in .local/redis8 for the WAITAOF (MULTIVAC_DURABILITY=replica) tests; optional.
bash "$root/deps/redis8.sh" || say "warning: deps/redis8.sh failed; the Redis 8 tests will be skipped"
say "done"
