# Stand-in for the official prom/prometheus image: Debian's prometheus with the
# official image's interface: the entrypoint is the server, its history in /prometheus
# (owned by nobody, 65534, the user the image and the stack run it as), the config at
# /etc/prometheus/prometheus.yml. Debian's is 2.42, the official pin 2.53: the config
# and rules the overlay ships are read by both (promtool 2.42 checks them in the tests).
ARG DEBIAN_IMAGE=prework-standin/debian:bookworm
FROM ${DEBIAN_IMAGE}
# The mirror apt is configured with decides the versions (a dated snapshot in CI).
# hadolint ignore=DL3008
RUN apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
       prometheus \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
    && mkdir -p /prometheus && chown 65534:65534 /prometheus
USER 65534:65534
WORKDIR /prometheus
VOLUME /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
