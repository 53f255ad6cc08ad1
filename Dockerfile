# Tracemill's API and workers (the same image; the command picks the role).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY service service
COPY workers workers
COPY verifiers verifiers
COPY migrations migrations
RUN pip install --no-cache-dir . \
 && useradd --create-home tracemill \
 && mkdir /shards && chown tracemill /shards
USER tracemill
ENV TRACEMILL_SHARD_DIR=/shards
EXPOSE 8420
CMD ["tracemill", "serve", "--host", "0.0.0.0", "--port", "8420"]
