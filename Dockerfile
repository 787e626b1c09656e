# The prework-flask-app image: `docker build -t prework-flask-app .`
# Release builds also pass --build-arg VERSION="$(cat VERSION)" --build-arg GIT_SHA="$(git rev-parse HEAD)".
# Offline builds pass --build-arg BASE_IMAGE=<a local Python 3.11 image> and, behind a
# TLS-inspecting proxy, --build-arg CA_BUNDLE=<path of a CA bundle inside that image>.

ARG BASE_IMAGE=python:3.11-slim

# Builder: the service's runtime dependencies (pyproject's [project] dependencies, not
# the tooling's extras) as wheels, installed into a venv that the runtime stage copies;
# nothing of pip's cache or the wheels ships.
FROM ${BASE_IMAGE} AS builder
ARG CA_BUNDLE=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" >requirements.txt \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip wheel ${CA_BUNDLE:+--cert "$CA_BUNDLE"} --wheel-dir /wheels -r requirements.txt \
    && /opt/venv/bin/pip install --no-index --find-links /wheels -r requirements.txt

# Runtime: the same base (the venv's interpreter path must match), no compilers, no root.
FROM ${BASE_IMAGE}
ARG VERSION=""
ARG GIT_SHA=unknown
LABEL org.opencontainers.image.title="prework-flask-app" \
      org.opencontainers.image.description="Flask notes service on MongoDB with a Redis cache" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${GIT_SHA}"
# The image is for production: settings are checked strictly and MongoDB is required.
ENV PATH=/opt/venv/bin:$PATH \
    APP_ENV=production \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GIT_SHA=${GIT_SHA}
# No setuid/setgid programs (su, passwd, mount...): nothing in the container can gain
# another user's rights, which Swarm's missing no-new-privileges (CIS 5.25) would allow.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app \
    && find / -xdev -type f -perm /6000 -exec chmod ug-s {} +
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY gunicorn.conf.py VERSION ./
COPY app/ ./app/
# A VERSION build argument must agree with the VERSION file the app reports.
RUN test -z "$VERSION" || test "$VERSION" = "$(cat VERSION)"
USER 10001:10001
EXPOSE 8000
# Ready once, then live (app/healthcheck.py); the stack's own check is the same.
HEALTHCHECK --interval=5s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-m", "app.healthcheck"]
CMD ["gunicorn", "--config", "gunicorn.conf.py", "--bind", "0.0.0.0:8000", "app:create_app()"]
