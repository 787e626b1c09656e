# Stand-in for the official nginx image: Debian's nginx with the official image's
# interface: /docker-entrypoint.sh renders /etc/nginx/templates/*.template with
# envsubst (defined variables only) into /etc/nginx/conf.d/, logs go to
# stdout/stderr, and the command is `nginx -g 'daemon off;'`. The stream module (built
# into the official image) is Debian's libnginx-mod-stream: the edge needs it. As in the
# official image, an nginx user 101:101 (the stack runs nginx as it), temp files under
# /var/cache/nginx (Debian's /var/lib/nginx points there) and the pid in /run.
ARG DEBIAN_IMAGE=prework-standin/debian:bookworm
FROM ${DEBIAN_IMAGE}
# The mirror apt is configured with decides the versions (a dated snapshot in CI).
# hadolint ignore=DL3008
RUN groupadd --system --gid 101 nginx \
    && useradd --system --uid 101 --gid nginx --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin nginx \
    && apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
       nginx libnginx-mod-stream gettext-base \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
       /etc/nginx/sites-enabled/default /var/lib/nginx \
    && mkdir -p /var/cache/nginx \
    && ln -s /var/cache/nginx /var/lib/nginx \
    && ln -sf /dev/stdout /var/log/nginx/access.log \
    && ln -sf /dev/stderr /var/log/nginx/error.log
COPY nginx-entrypoint.sh /docker-entrypoint.sh
EXPOSE 80
STOPSIGNAL SIGQUIT
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["nginx", "-g", "daemon off;"]
