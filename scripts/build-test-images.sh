#!/usr/bin/env bash
# Builds the images the Docker tests use, locally (no registry is reachable in CI):
#   repro-test/postgres:15  a minimal Debian bookworm with postgresql-15 (debootstrap + docker import)
#   repro-test/busybox      a static busybox, for small services and helpers
# Images that already exist are reused; REPRO_REBUILD_IMAGES=1 rebuilds them.
set -euo pipefail

PG_IMAGE="${REPRO_TEST_PG_IMAGE:-repro-test/postgres:15}"
BB_IMAGE="${REPRO_TEST_BUSYBOX_IMAGE:-repro-test/busybox:latest}"
SUITE=bookworm

say() { printf 'build-test-images: %s\n' "$*" >&2; }
have_image() { [[ "${REPRO_REBUILD_IMAGES:-}" != "1" ]] && docker image inspect "$1" >/dev/null 2>&1; }

# The apt mirror configured on this machine (deb822 "URIs:" or one-line "deb URL suite").
mirror() {
    local url=""
    if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
        url=$(awk '/^URIs:/ {print $2}' /etc/apt/sources.list.d/*.sources 2>/dev/null |
              grep -v -e security -e '^$' | head -1 || true)
    fi
    if [[ -z "$url" ]]; then
        url=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
              awk '$1 == "deb" && $0 ~ / '"$SUITE"'( |$)/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' |
              grep -v security | head -1 || true)
    fi
    printf '%s' "$url"
}

work=$(mktemp -d "${TMPDIR:-/tmp}/repro-images.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- busybox -------------------------------------------------------------------------
if have_image "$BB_IMAGE"; then
    say "$BB_IMAGE: reused"
else
    say "$BB_IMAGE: building from /bin/busybox"
    root="$work/busybox"
    mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/data"
    cp /bin/busybox "$root/bin/busybox"
    for applet in $("$root/bin/busybox" --list); do
        [[ -e "$root/bin/$applet" ]] || ln -s busybox "$root/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    chmod 1777 "$root/tmp"
    tar -C "$root" -c . | docker import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/bin' - "$BB_IMAGE" >/dev/null
fi

# --- postgres --------------------------------------------------------------------------
if have_image "$PG_IMAGE"; then
    say "$PG_IMAGE: reused"
    exit 0
fi
url=$(mirror)
if [[ -z "$url" ]]; then
    say "no Debian mirror found in /etc/apt/sources.list*: cannot debootstrap"
    exit 1
fi
say "$PG_IMAGE: debootstrap $SUITE from $url (a few minutes)"
root="$work/postgres"
if ! debootstrap --variant=minbase --include=postgresql-15 "$SUITE" "$root" "$url" >"$work/debootstrap.log" 2>&1; then
    tail -30 "$work/debootstrap.log" >&2
    exit 1
fi
# smaller image: no apt lists, documentation or caches
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
       "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log
# the cluster made by the package is not used: the entrypoint makes one in PGDATA
rm -rf "$root"/var/lib/postgresql/15/main "$root"/etc/postgresql/15/main
cat >"$root/usr/local/bin/repro-pg-entrypoint" <<'EOF'
#!/bin/sh
# Makes a cluster in $PGDATA when it is empty, then runs postgres as the postgres user.
# Local connections and replication are trusted (a test image), TCP ones too unless
# POSTGRES_PASSWORD is set, in which case they need it (md5).
set -e
PGBIN=/usr/lib/postgresql/15/bin
PGDATA="${PGDATA:-/var/lib/postgresql/data}"
export PGDATA
mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    setpriv --reuid=postgres --regid=postgres --init-groups \
        "$PGBIN/initdb" -D "$PGDATA" -U "${POSTGRES_USER:-postgres}" --auth-local=trust \
        --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    method=trust
    if [ -n "$POSTGRES_PASSWORD" ]; then
        method=md5
        setpriv --reuid=postgres --regid=postgres --init-groups "$PGBIN/postgres" --single -D "$PGDATA" postgres \
            >/dev/null <<SQL
ALTER USER "${POSTGRES_USER:-postgres}" WITH PASSWORD '$POSTGRES_PASSWORD';
SQL
    fi
    {
        echo "local replication all trust"
        echo "host all all 0.0.0.0/0 $method"
        echo "host replication all 0.0.0.0/0 $method"
    } >>"$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.auto.conf"
    if [ -n "$POSTGRES_DB" ] && [ "$POSTGRES_DB" != postgres ]; then
        echo "CREATE DATABASE \"$POSTGRES_DB\";" | setpriv --reuid=postgres --regid=postgres --init-groups \
            "$PGBIN/postgres" --single -D "$PGDATA" postgres >/dev/null
    fi
fi
if [ "$#" -gt 0 ] && [ "$1" != postgres ]; then exec "$@"; fi
[ "$#" -gt 0 ] && shift
# docker stop sends TERM, which postgres takes as a "smart" shutdown that waits for every
# client: turn it into a fast shutdown so that a stop is quick and clean.
setpriv --reuid=postgres --regid=postgres --init-groups "$PGBIN/postgres" -D "$PGDATA" "$@" &
pid=$!
trap 'kill -INT $pid' TERM INT
rc=0
wait $pid || rc=$?
if kill -0 $pid 2>/dev/null; then rc=0; wait $pid || rc=$?; fi
exit $rc
EOF
chmod 755 "$root/usr/local/bin/repro-pg-entrypoint"
tar -C "$root" -c . | docker import \
    -c 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV PGDATA=/var/lib/postgresql/data' \
    -c 'ENV LANG=C.UTF-8' \
    -c 'VOLUME /var/lib/postgresql/data' \
    -c 'EXPOSE 5432' \
    -c 'ENTRYPOINT ["/usr/local/bin/repro-pg-entrypoint"]' \
    -c 'CMD ["postgres"]' \
    - "$PG_IMAGE" >/dev/null
say "$PG_IMAGE: built"
