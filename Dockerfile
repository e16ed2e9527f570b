# The WeSafe Privacy API: migrates its database, then serves on port 8000.
# docker build -t wesafe-privacy . && docker run -p 8000:8000 -e PRIVACY_ENV=production \
#   -e PRIVACY_DATABASE_URL=postgresql://privacy:...@db:5432/privacy -e PRIVACY_JWT_SECRET=... \
#   -e PRIVACY_ENCRYPTION_KEYS=k1:... -e PRIVACY_HASH_KEY=... wesafe-privacy
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

RUN useradd --system --uid 10001 --home-dir /var/lib/privacy --create-home privacy
USER privacy
WORKDIR /var/lib/privacy

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["privacy", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
