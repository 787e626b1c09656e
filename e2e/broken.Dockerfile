# A release whose health check fails: the app image, but gunicorn listens on the wrong
# port, so /healthz on 8000 never answers. Swarm must roll an update to it back.
ARG APP_IMAGE=prework-flask-app
FROM ${APP_IMAGE}
CMD ["gunicorn", "--config", "gunicorn.conf.py", "--bind", "0.0.0.0:8001", "app:create_app()"]
