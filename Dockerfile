# The CCI service image: slim Python, non-root, migrations applied on start.

# GOV.UK Frontend assets for the review pages, from the npm registry (pinned by the lock file).
FROM node:20-slim AS assets
WORKDIR /assets
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts

FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CCI_DATABASE_URL=sqlite:////var/lib/cci/cci.db \
    CCI_FRONTEND_DIR=/app/frontend

WORKDIR /app
COPY pyproject.toml README.md ./
COPY linkage ./linkage
COPY service ./service
COPY cli ./cli
COPY migrations ./migrations
COPY --from=assets /assets/node_modules/govuk-frontend/dist/govuk ./frontend
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /var/lib/cci --create-home cci

USER cci
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
# The same two commands CI runs outside Docker (see tests/test_entrypoint.py). With more than
# one worker, set CCI_SESSION_SECRET so that review-page sessions hold across workers.
CMD ["sh", "-c", "cci db upgrade && exec cci serve --host 0.0.0.0 --port 8000"]
