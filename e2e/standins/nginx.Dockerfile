# Stand-in for the official nginx image: Debian's nginx with the official image's
# interface: /docker-entrypoint.sh renders /etc/nginx/templates/*.template with
# envsubst (defined variables only) into /etc/nginx/conf.d/, logs go to
# stdout/stderr, and the command is `nginx -g 'daemon off;'`. The stream module (built
# into the official image) is Debian's libnginx-mod-stream: the edge needs it.
ARG DEBIAN_IMAGE=prework-standin/debian:bookworm
FROM ${DEBIAN_IMAGE}
# The mirror apt is configured with decides the versions (a dated snapshot in CI).
# hadolint ignore=DL3008
RUN apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
       nginx libnginx-mod-stream gettext-base \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
       /etc/nginx/sites-enabled/default \
    && ln -sf /dev/stdout /var/log/nginx/access.log \
    && ln -sf /dev/stderr /var/log/nginx/error.log
COPY nginx-entrypoint.sh /docker-entrypoint.sh
EXPOSE 80
STOPSIGNAL SIGQUIT
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["nginx", "-g", "daemon off;"]
