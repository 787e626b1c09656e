# Stand-in for the official redis image: Debian's redis-server, the same
# entrypoint contract (`redis-server ...` drops to the redis user), WORKDIR /data, and
# the same redis user 999:999 (the stack runs Redis as it).
ARG DEBIAN_IMAGE=prework-standin/debian:bookworm
FROM ${DEBIAN_IMAGE}
# The mirror apt is configured with decides the versions (a dated snapshot in CI).
# hadolint ignore=DL3008
RUN groupadd --system --gid 999 redis \
    && useradd --system --uid 999 --gid redis --no-create-home --home-dir /var/lib/redis \
       --shell /usr/sbin/nologin redis \
    && apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
       redis-server \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
    && mkdir /data && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /data
WORKDIR /data
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
