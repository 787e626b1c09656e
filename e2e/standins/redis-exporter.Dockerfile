# Stand-in for the official oliver006/redis_exporter (-alpine) image: Debian's
# prometheus-redis-exporter (1.45; the official pin is 1.67) at the official path,
# /redis_exporter, with a shell (the overlay's entrypoint reads the password with it),
# run as nobody. Both read REDIS_PASSWORD and the `--redis.addr=` flag.
ARG DEBIAN_IMAGE=prework-standin/debian:bookworm
FROM ${DEBIAN_IMAGE}
# The mirror apt is configured with decides the versions (a dated snapshot in CI).
# hadolint ignore=DL3008
RUN apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
       prometheus-redis-exporter \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
    && ln -s /usr/bin/prometheus-redis-exporter /redis_exporter
USER 65534:65534
EXPOSE 9121
ENTRYPOINT ["/redis_exporter"]
