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

# A streaming standby of that cluster, made with pg_basebackup and started
# on the next port, for the read-replica tests (tests/tests/replicas.rs).
# Call after need_postgres. Sets SAMBUNG_TEST_REPLICATION to
# "PRIMARY_URL STANDBY_URL" (both the administrator's, as above): the
# replica tests run against these in every pass, SQLite's too.
need_standby() {
    local as_root=""
    [ "$(id -u)" = 0 ] || as_root="sudo"
    local version port
    version="$(ls /usr/lib/postgresql | sort -n | tail -1)"
    port="$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $3}')"
    # Replication, and pausing a standby's replay (the tests play a
    # lagging replica with it) in every database made from template1 —
    # function grants belong to a database.
    local db
    for db in template1 postgres; do
        $as_root su postgres -c "psql -q -p $port -d $db -v ON_ERROR_STOP=1" <<'SQL'
ALTER ROLE sambung REPLICATION;
GRANT EXECUTE ON FUNCTION pg_wal_replay_pause() TO sambung;
GRANT EXECUTE ON FUNCTION pg_wal_replay_resume() TO sambung;
SQL
    done
    local dir="/var/lib/postgresql/$version/standby"
    if ! pg_lsclusters -h | awk '{print $1, $2}' | grep -qx "$version standby"; then
        $as_root pg_createcluster "$version" standby >/dev/null
    fi
    # A standby not made yet (or half made): its data from a base backup,
    # through a replication slot, so the primary keeps the WAL the standby
    # has not received (without one, a standby left behind — a machine
    # paused between runs — finds its next segment removed and never
    # catches up).
    rebuild() {
        $as_root pg_ctlcluster "$version" standby stop >/dev/null 2>&1 || true
        $as_root su postgres -c "psql -q -p $port -d postgres -c \"SELECT pg_drop_replication_slot('sambung_test_standby') FROM pg_replication_slots WHERE slot_name = 'sambung_test_standby'\"" >/dev/null
        $as_root su postgres -c "rm -rf '$dir' && PGPASSWORD=sambung pg_basebackup -h 127.0.0.1 -p $port -U sambung -D '$dir' -R -X stream -C -S sambung_test_standby"
    }
    if ! $as_root test -f "$dir/standby.signal"; then
        rebuild
    fi
    if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "standby" {print $4}' | grep -q online; then
        $as_root pg_ctlcluster "$version" standby start
    fi
    # Streaming, as the primary sees it; a standby that cannot catch up is
    # made again (once).
    streaming() {
        local n
        for _ in $(seq 1 30); do
            n="$($as_root su postgres -c "psql -tA -p $port -d postgres -c \"SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'\"")"
            [ "${n:-0}" -gt 0 ] && return 0
            sleep 0.5
        done
        return 1
    }
    if ! streaming; then
        echo "the PostgreSQL standby is not streaming: making it again from a base backup"
        rebuild
        $as_root pg_ctlcluster "$version" standby start
        streaming || { echo "the PostgreSQL standby does not stream"; return 1; }
    fi
    local standby
    standby="$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "standby" {print $3}')"
    export SAMBUNG_TEST_REPLICATION="postgres://sambung:sambung@127.0.0.1:$port/postgres?sslmode=disable postgres://sambung:sambung@127.0.0.1:$standby/postgres?sslmode=disable"
}
