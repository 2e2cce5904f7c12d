# Sourced by scripts/test: Debian's PostgreSQL, installed when missing and
# started, with a role `sambung` that may create the tests' databases.
# Sets SAMBUNG_TEST_POSTGRES (the administrator's URL, see tests/src/lib.rs).
need_postgres() {
    local as_root=""
    [ "$(id -u)" = 0 ] || as_root="sudo"
    if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
        $as_root apt-get install -y -q postgresql >/dev/null 2>&1 \
            || ($as_root apt-get update -q >/dev/null && $as_root apt-get install -y -q postgresql >/dev/null)
    fi
    local version
    version="$(ls /usr/lib/postgresql | sort -n | tail -1)"
    if ! pg_lsclusters -h | awk '{print $1, $2}' | grep -qx "$version main"; then
        $as_root pg_createcluster "$version" main >/dev/null
    fi
    # Started by hand: containers have no init system to do it.
    if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $4}' | grep -qx online; then
        $as_root pg_ctlcluster "$version" main start
    fi
    local port
    port="$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $3}')"
    $as_root su postgres -c "psql -q -p $port -v ON_ERROR_STOP=1" <<'SQL'
DO $$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sambung') THEN
    CREATE ROLE sambung LOGIN CREATEDB PASSWORD 'sambung';
  END IF;
END$$;
SQL
    export SAMBUNG_TEST_POSTGRES="postgres://sambung:sambung@127.0.0.1:$port/postgres?sslmode=disable"
}
