# Stand-in for the official nginx/nginx-prometheus-exporter image: Debian's
# prometheus-nginx-exporter (0.11; the official pin is 1.4) as the entrypoint, run as
# nobody. Both read the `--nginx.scrape-uri=` and `--web.listen-address=` flags the
# overlay gives (Go's flag package takes the double dash too).
ARG DEBIAN_IMAGE=prework-standin/debian:bookworm
FROM ${DEBIAN_IMAGE}
# The mirror apt is configured with decides the versions (a dated snapshot in CI).
# hadolint ignore=DL3008
RUN apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
       prometheus-nginx-exporter \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
USER 65534:65534
EXPOSE 9113
ENTRYPOINT ["/usr/bin/prometheus-nginx-exporter"]
