#!/bin/sh
# Installs, when missing, what `make run` / `make test` need from Debian:
# PostgreSQL server binaries (a private cluster is started from them) and,
# for tests, Chromium. Needs root (CI and these machines run as root).
set -e
need=""
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || need="$need postgresql"
if [ "$1" = "test" ]; then
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need="$need chromium"
  command -v npm >/dev/null 2>&1 || need="$need npm"
fi
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing:$need — install with: sudo apt-get install -y$need" >&2
  exit 1
fi
echo "installing:$need"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $need >/dev/null
# Debian starts the packaged cluster; we run our own private ones instead.
if command -v pg_lsclusters >/dev/null 2>&1; then
  service postgresql stop >/dev/null 2>&1 || true
fi
