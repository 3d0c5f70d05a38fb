# One image for every Switchboard process; docker-compose.yml picks the command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
COPY scripts ./scripts
RUN pip install . && useradd --system --uid 10001 switchboard \
    && mkdir -p /app/var /tmp/prometheus && chown switchboard /app/var /tmp/prometheus
USER switchboard
EXPOSE 8001 8002 8003
