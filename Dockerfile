FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIGIL_DATABASE_URL=sqlite:////data/vigil.db

RUN useradd --system --create-home --uid 10001 vigil \
    && mkdir /data && chown vigil /data

WORKDIR /srv/vigil
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
RUN pip install --no-cache-dir -e .

USER vigil
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"

CMD ["vigil", "serve", "--host", "0.0.0.0", "--port", "8000"]
