# One image for every VolSpike service; the command picks the service.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY pyproject.toml README.md ./
COPY volspike ./volspike
COPY db ./db
COPY ingest ./ingest
COPY bot ./bot
COPY webapp ./webapp
COPY locales ./locales
COPY babel.cfg ./

RUN pip install . \
    && pybabel compile -d locales -D messages \
    && useradd --system --uid 10001 volspike

USER volspike
EXPOSE 8080
ENTRYPOINT ["volspike"]
CMD ["run"]
