# Sovereign Watch: one process, one SQLite file on a volume.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    SW_DB_PATH=/data/sovereign-watch.db \
    SW_HTTP_PORT=8080 \
    SW_HTTP_HOST=0.0.0.0

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
EXPOSE 8080
# /healthz: 200 while the loops run and the store takes writes (passes if SW_HTTP_PORT is unset).
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "-m", "bot.ops.probe"]
ENTRYPOINT ["sovereign-watch"]
CMD ["run"]
