# Sovereign Watch: one process, one SQLite file on a volume.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    SW_DB_PATH=/data/sovereign-watch.db

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY storage ./storage
COPY prompts ./prompts
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /data sw \
    && mkdir -p /data && chown sw /data

USER sw
VOLUME ["/data"]
ENTRYPOINT ["sovereign-watch"]
CMD ["run"]
