# The WeSafe Privacy API: one image for each part of the service (compose.yaml runs them side by side):
#   serve (the default)   migrate under PostgreSQL's advisory lock, then serve on port 8000
#   worker                deliver webhooks
#   retention schedule    the nightly retention sweep
# It runs in production mode: every setting docs/operations.md#docker lists must be given, or it refuses to
# start and says which (`docker run --rm ... wesafe-privacy check` tells without starting).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /srv/privacy
COPY pyproject.toml README.md constraints.txt ./
COPY app ./app
COPY migrations ./migrations
RUN pip install -c constraints.txt . && rm -rf /root/.cache
COPY docker/entrypoint.sh /usr/local/bin/privacy-entrypoint
RUN chmod 0755 /usr/local/bin/privacy-entrypoint

RUN useradd --system --uid 10001 --home-dir /var/lib/privacy --create-home privacy
USER privacy
WORKDIR /var/lib/privacy

# The rest comes from `docker run -e` or compose.yaml (docs/configuration.md). The metric files of the
# workers go to /var/lib/privacy/privacy-metrics, emptied at every start.
ENV PRIVACY_ENV=production \
    PRIVACY_HOST=0.0.0.0 \
    PRIVACY_PORT=8000 \
    PRIVACY_WORKERS=2

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s \
    CMD python -c "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PRIVACY_PORT', '8000'), timeout=2)"
ENTRYPOINT ["privacy-entrypoint"]
CMD ["serve"]
