# A release whose health check fails: the app image, but gunicorn listens on the wrong
# port, so /healthz on 8000 never answers. Swarm must roll an update to it back.
# Both ways of choosing the port say 8001: the CMD, and GUNICORN_BIND for a stack file
# that gives its own command without --bind (docker-compose.embedded-store.yml).
ARG APP_IMAGE=prework-flask-app
FROM ${APP_IMAGE}
ENV GUNICORN_BIND=0.0.0.0:8001
CMD ["gunicorn", "--config", "gunicorn.conf.py", "--bind", "0.0.0.0:8001", "app:create_app()"]
