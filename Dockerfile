# Wraparound FHIR hub. Build: docker build -t wraparound .
# Run:   docker run -p 8000:8000 -v wraparound-data:/data wraparound
# PostgreSQL: -e WRAPAROUND_DATABASE_URL=postgresql+psycopg://user:pass@db:5432/wraparound
# Behind a proxy, set WRAPAROUND_BASE_URL to the public URL (token audience and Location headers use it).
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY auth ./auth
COPY adapters ./adapters
COPY fhir_profiles ./fhir_profiles
RUN python -m venv /opt/wraparound && /opt/wraparound/bin/pip install .

FROM python:3.11-slim

ENV PATH=/opt/wraparound/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    WRAPAROUND_HOST=0.0.0.0 \
    WRAPAROUND_PORT=8000 \
    WRAPAROUND_DATABASE_URL=sqlite:////data/wraparound.db

RUN groupadd --system --gid 10001 wraparound \
    && useradd --system --uid 10001 --gid wraparound --home-dir /data --no-create-home wraparound \
    && mkdir /data && chown wraparound:wraparound /data
COPY --from=build /opt/wraparound /opt/wraparound

USER wraparound
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000

# The slim image has no curl: ask Python. /healthz is liveness only (/readyz also checks the database).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

# WRAPAROUND_SECRET_KEY must be supplied at run time (`wraparound secrets generate-key` makes one);
# the hub refuses to start without it.
CMD ["wraparound", "serve", "--host", "0.0.0.0", "--port", "8000"]
