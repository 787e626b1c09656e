# Stand-in for the official python:3.11-slim where no registry answers: Debian's
# CPython 3.11 with venv, `python` on PATH, and the host's CA bundle, so that pip in
# a build given --build-arg CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt reaches PyPI
# through a TLS-inspecting proxy.
ARG DEBIAN_IMAGE=prework-standin/debian:bookworm
FROM ${DEBIAN_IMAGE}
ENV LANG=C.UTF-8
# The mirror apt is configured with decides the versions (a dated snapshot in CI).
# hadolint ignore=DL3008
RUN apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
       python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
    && ln -s /usr/bin/python3 /usr/local/bin/python
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
