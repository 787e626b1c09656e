#!/bin/sh
# The official nginx image's template step (20-envsubst-on-templates.sh): every
# /etc/nginx/templates/X.template becomes /etc/nginx/conf.d/X, substituting only
# variables defined in the environment (NGINX_ENVSUBST_FILTER narrows them); then its
# other /docker-entrypoint.d/ hooks.
set -e
if [ "$1" = nginx ] || [ "$1" = nginx-debug ]; then
    template_dir="${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}"
    suffix="${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}"
    output_dir="${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}"
    filter="${NGINX_ENVSUBST_FILTER:-}"
    defined_envs=$(printf '${%s} ' $(awk "END { for (name in ENVIRON) { print ( name ~ /${filter}/ ) ? name : \"\" } }" </dev/null))
    if [ -d "$template_dir" ]; then
        find "$template_dir" -follow -type f -name "*$suffix" -print | while read -r template; do
            relative_path="${template#"$template_dir/"}"
            output_path="$output_dir/${relative_path%"$suffix"}"
            mkdir -p "$(dirname "$output_path")"
            echo "$0: Running envsubst on $template to $output_path"
            envsubst "$defined_envs" <"$template" >"$output_path"
        done
    fi
    # Then, as the official docker-entrypoint.sh does, every executable
    # /docker-entrypoint.d/*.sh in order (the stack mounts its upstream watcher there).
    if [ -d /docker-entrypoint.d ]; then
        find /docker-entrypoint.d/ -follow -type f -name '*.sh' -print | sort -V | while read -r hook; do
            if [ -x "$hook" ]; then
                echo "$0: Launching $hook"
                "$hook"
            fi
        done
    fi
    echo "$0: Configuration complete; ready for start up"
fi
exec "$@"
