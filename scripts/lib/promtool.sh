# Sourced by scripts/test (and by hand before `cargo test -p sambung-e2e
# --test operations`): Prometheus's promtool, from Debian's package
# prometheus, installed when missing. The end-to-end test of `/metrics`
# runs `promtool check metrics` on a real server's answer and fails
# without it. The package's server is not started (no init system here).
need_promtool() {
    command -v promtool >/dev/null 2>&1 && return 0
    local as_root=""
    [ "$(id -u)" = 0 ] || as_root="sudo"
    $as_root apt-get install -y -q prometheus >/dev/null 2>&1 \
        || ($as_root apt-get update -q >/dev/null && $as_root apt-get install -y -q prometheus >/dev/null)
    command -v promtool >/dev/null
}
