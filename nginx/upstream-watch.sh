#!/bin/sh
# Keep an nginx upstream's servers equal to the addresses NGINX_UPSTREAM_HOST resolves to.
#
# Two users, one script: nginx (its http upstream of `web` replicas, settings in
# nginx/template.env) and the edge (its stream upstream of `nginx` tasks, settings in
# nginx/edge.env). The servers file's lines (`server ADDRESS:PORT max_fails=0;`) mean
# the same in both contexts.
#
# Why a script: the template's `upstream` block (keep-alive connections to the
# replicas) lists addresses, and nginx before 1.27.3 (Debian 12 ships 1.22, the
# tests' and the e2e stand-in's nginx) resolves upstream names only once, at start.
# So this resolves the name itself, rewrites the file the block includes when the
# set of addresses changes, and reloads nginx, which is graceful: old workers finish
# their requests. It uses only what every Debian-based nginx image has (sh, getent
# from libc-bin, awk, sort); the official image has no Python, and no packaged tool
# does this for plain nginx (docker-gen and confd need the Docker socket or a store).
#
#   upstream-watch.sh              as a /docker-entrypoint.d/ hook: `once`, then
#                                  `watch` in the background, then nginx starts
#   upstream-watch.sh once         write the servers file now, no reload
#   upstream-watch.sh watch [CMD]  poll; on a change rewrite and run CMD
#                                  (default: nginx -s reload, with -c NGINX_MAIN_CONF
#                                  when set)
#
# Settings (nginx/template.env): NGINX_UPSTREAM_HOST, NGINX_UPSTREAM_PORT,
# NGINX_UPSTREAM_SERVERS (the included file), NGINX_UPSTREAM_POLL (seconds),
# NGINX_MAIN_CONF (the config nginx was started on, when not the default: the edge's).
set -eu

host=${NGINX_UPSTREAM_HOST:?}
port=${NGINX_UPSTREAM_PORT:?}
file=${NGINX_UPSTREAM_SERVERS:?}
poll=${NGINX_UPSTREAM_POLL:-1}

log() {
    echo "upstream-watch: $*" >&2
}

# The servers for every IPv4 address of the host, sorted. With none (the service
# does not exist yet, or has no healthy replica) one `down` server: nginx then
# answers 502 at once, in the template's JSON, instead of waiting on a timeout.
servers() {
    addresses=$(getent ahostsv4 "$host" | awk '{ print $1 }' | sort -u)
    if [ -z "$addresses" ]; then
        echo "# $host resolves to nothing: every request gets 502"
        echo "server 127.0.0.1:$port down;"
        return
    fi
    echo "# $host resolves to:"
    # max_fails=0: a replica's 503 (its store is down, /readyz) retries another one
    # but never marks it failed, or a store outage would 502 every route for 10 s.
    for address in $addresses; do
        echo "server $address:$port max_fails=0;"
    done
}

# Rewrite the file (atomically) only when the servers differ; false when unchanged.
update() {
    new=$(servers)
    if [ -f "$file" ] && [ "$new" = "$(cat "$file")" ]; then
        return 1
    fi
    printf '%s\n' "$new" >"$file.tmp"
    mv -f "$file.tmp" "$file"
    log "$(printf '%s' "$new" | awk '/^server/ { sub(";", "", $2); printf "%s ", $2 }')"
}

# A failed reload (nginx not up yet, say) is retried until it succeeds.
watch() {
    pending=
    while :; do
        sleep "$poll"
        if update; then
            pending=yes
        fi
        if [ -n "$pending" ] && "$@"; then
            pending=
        fi
    done
}

mode=${1:-hook}
[ $# -eq 0 ] || shift
if [ $# -eq 0 ]; then
    # `nginx -s reload` finds the master through the pid file its config names.
    set -- nginx ${NGINX_MAIN_CONF:+-c "$NGINX_MAIN_CONF"} -s reload
fi
case $mode in
    once) update || true ;;
    watch) watch "$@" ;;
    hook)
        update || true
        watch "$@" </dev/null &
        ;;
    *)
        log "unknown mode $mode: use once, watch or no argument"
        exit 2
        ;;
esac
