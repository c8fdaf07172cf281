# One image for every VolSpike service; the command picks the service (see docker-compose.yml).
# Stage 1 bundles the Mini App's browser modules from npm (package-lock.json); stage 2 builds the
# wheel with them (its build hook compiles the translation catalogs); stage 3 installs only the
# locked runtime requirements and that wheel, and runs as an unprivileged user.

FROM node:20-slim AS assets
WORKDIR /src/webapp/frontend
COPY webapp/frontend/package.json webapp/frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY webapp/frontend/ ./
# the number formats the bundle shares with the server (webapp/frontend/src/lib/format.js imports it)
COPY core/number_formats.json /src/core/number_formats.json
RUN npm run build

FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md hatch_build.py babel.cfg ./
COPY volspike ./volspike
COPY core ./core
COPY db ./db
COPY ingest ./ingest
COPY bot ./bot
COPY webapp ./webapp
COPY simulator ./simulator
COPY locales ./locales
COPY --from=assets /src/webapp/static/dist ./webapp/static/dist
RUN pip wheel --no-deps --wheel-dir /dist .

FROM python:3.11-slim AS runtime
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements/main.lock /tmp/main.lock
RUN pip install --require-hashes --no-deps -r /tmp/main.lock && rm /tmp/main.lock
COPY --from=builder /dist/ /tmp/dist/
RUN pip install --no-deps /tmp/dist/volspike-*.whl \
    && rm -r /tmp/dist \
    && useradd --system --uid 10001 --create-home --home-dir /home/volspike volspike
USER volspike
WORKDIR /home/volspike
EXPOSE 8080
# The default command is `run` (all three services); compose gives each service its own check.
HEALTHCHECK --interval=15s --timeout=10s --start-period=60s --retries=5 CMD ["volspike", "healthcheck", "run"]
ENTRYPOINT ["volspike"]
CMD ["run"]
