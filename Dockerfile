# The CCI service image: slim Python, non-root, migrations applied on start.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CCI_DATABASE_URL=sqlite:////var/lib/cci/cci.db

WORKDIR /app
COPY pyproject.toml README.md ./
COPY linkage ./linkage
COPY service ./service
COPY cli ./cli
COPY migrations ./migrations
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /var/lib/cci --create-home cci

USER cci
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
# The same two commands CI runs outside Docker (see tests/test_entrypoint.py).
CMD ["sh", "-c", "cci db upgrade && cci serve --host 0.0.0.0 --port 8000"]
