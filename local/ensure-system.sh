#!/usr/bin/env bash
# Makes sure the system packages the local stack and the test suite need are present:
# PostgreSQL 15 server with pgTAP, pg_cron and plpgsql_check, and pg_prove.
# On Debian/Ubuntu it installs what is missing with apt-get (as root, or through sudo);
# elsewhere it stops and names exactly what to install. Quiet when everything is there.
set -euo pipefail

pg_bin=/usr/lib/postgresql/15/bin
pg_ext=/usr/share/postgresql/15/extension
missing=()
[ -x "$pg_bin/postgres" ] && [ -x "$pg_bin/initdb" ] || missing+=(postgresql-15)
[ -f "$pg_ext/pgtap.control" ] || missing+=(postgresql-15-pgtap)
[ -f "$pg_ext/pg_cron.control" ] || missing+=(postgresql-15-cron)
[ -f "$pg_ext/plpgsql_check.control" ] || missing+=(postgresql-15-plpgsql-check)
command -v pg_prove >/dev/null 2>&1 || missing+=(libtap-parser-sourcehandler-pgtap-perl)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client-15)

[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "Coach Ledger's local stack needs PostgreSQL 15 with pgTAP, pg_cron and plpgsql_check," >&2
  echo "and pg_prove. This system has no apt-get; install these (Debian package names):" >&2
  printf '  %s\n' "${missing[@]}" >&2
  echo "with binaries under $pg_bin and extensions under $pg_ext." >&2
  exit 1
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo=(sudo); else
    echo "Missing packages (${missing[*]}) and not root, with no sudo to install them." >&2
    exit 1
  fi
fi

echo "Installing system packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >&2
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
