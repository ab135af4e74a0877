# The monitor daemon. Build: `docker build -t monitor .`; run with docker-compose.yml.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MONITOR_CONFIG=/config \
    MONITOR_DATABASE_URL=sqlite:////data/monitor.db \
    MONITOR_MIGRATIONS_DIR=/app/migrations

WORKDIR /app
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY migrations ./migrations
RUN pip install --no-cache-dir . \
    && useradd --system --home-dir /app --shell /usr/sbin/nologin monitor \
    && mkdir -p /data && chown monitor /data

# The shipped config and demo seeds (feeds.yaml names ../seeds/, which is /seeds here);
# mount your own config folder over /config.
COPY config /config
COPY seeds /seeds

USER monitor
VOLUME ["/data"]
ENTRYPOINT ["monitor"]
CMD ["run"]
