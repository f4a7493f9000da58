#!/usr/bin/env bash
# Create the PostgreSQL role and database of the server profile with the C.UTF-8 locale.
# (`verdi presto --use-postgres` hard-codes en_US.UTF-8, which minimal Debian does not have.)
#   bash setup_profiles/server/create_database.sh [NAME] [PASSWORD]
# Connects as the `postgres` superuser (PGHOST/PGUSER/PGPASSWORD are honoured).
set -euo pipefail
NAME=${1:-aiida_ionfield_server}
PASSWORD=${2:-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}
export PGHOST=${PGHOST:-localhost} PGUSER=${PGUSER:-postgres}
psql -v ON_ERROR_STOP=1 -q -d postgres <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$NAME') THEN
    CREATE ROLE "$NAME" LOGIN PASSWORD '$PASSWORD';
  ELSE
    ALTER ROLE "$NAME" WITH LOGIN PASSWORD '$PASSWORD';
  END IF;
END \$\$;
SQL
if ! psql -tAq -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$NAME'" | grep -q 1; then
    psql -v ON_ERROR_STOP=1 -q -d postgres -c \
        "CREATE DATABASE \"$NAME\" OWNER \"$NAME\" ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' TEMPLATE template0"
fi
echo "database and role: $NAME   password: $PASSWORD"
