#!/usr/bin/env bash
# Prepares a Docker Engine and the test images for the Docker tests (and xfsprogs for the
# reflink tests, which mount a small XFS image; and sqldiff, which the SQLite diff is
# checked against).
#
# Runs from `make test`. It acts only when asked: under CI=true or REPRO_TEST_DOCKER=1.
# On a developer's laptop without the opt-in it does nothing (the Docker tests then run
# against an engine that is already reachable, or skip saying how to enable them).
# Under the opt-in, an engine that cannot be started is a failure: exit non-zero.
set -euo pipefail

if [[ "${CI:-}" != "true" && "${REPRO_TEST_DOCKER:-}" != "1" ]]; then
    exit 0
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log_dir="${REPRO_TEST_LOG_DIR:-/tmp/repro-test-setup}"
mkdir -p "$log_dir"

say() { printf 'test-setup: %s\n' "$*" >&2; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo -n "$@"; fi; }

# 1. packages: only what is missing, one `apt-get update` at most ----------------------
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
[[ -x /bin/busybox ]] || missing+=(busybox-static)
[[ -x /usr/sbin/sshd ]] || missing+=(openssh-server)
command -v mkfs.xfs >/dev/null 2>&1 || missing+=(xfsprogs)  # the reflink tests: a loop-mounted XFS
command -v sqldiff >/dev/null 2>&1 || missing+=(sqlite3-tools)  # the SQLite diff's oracle (test_diff_sqldiff.py)
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)   # the diff's C library (workbench/diff/_cells.c)
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    as_root apt-get update -q >"$log_dir/apt.log" 2>&1
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}" >>"$log_dir/apt.log" 2>&1; then
        say "apt-get install failed; see $log_dir/apt.log"
        tail -20 "$log_dir/apt.log" >&2
        exit 1
    fi
fi

# The diff's C library: the install builds it when a compiler is there; built here when
# the compiler came only now (the tests check that it is present under CI).
root="$(dirname "$here")"
if [[ ! -f "$root/workbench/diff/_cells.so" ]]; then
    say "building the diff's C library"
    (cd "$root" && python3 hatch_build.py) >&2
fi

# 2. the engine: start dockerd in the background when nothing answers -------------------
if ! docker info >/dev/null 2>&1; then
    say "starting dockerd (log: $log_dir/dockerd.log)"
    as_root sh -c "nohup dockerd --storage-driver=overlay2 >'$log_dir/dockerd.log' 2>&1 &"
    for _ in $(seq 1 120); do
        docker info >/dev/null 2>&1 && break
        sleep 0.5
    done
    if ! docker info >/dev/null 2>&1; then
        say "dockerd did not answer within 60 s; the last lines of its log:"
        tail -20 "$log_dir/dockerd.log" >&2 || true
        exit 1
    fi
fi

# 3. the test images, built locally and reused ---------------------------------------
"$here/build-test-images.sh"
