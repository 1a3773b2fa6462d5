# One image for every Meterhouse service; the command picks the service.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false DAGSTER_HOME=/var/lib/meterhouse/dagster
RUN pip install --no-cache-dir uv && mkdir -p /var/lib/meterhouse/dagster
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
RUN uv sync --frozen --no-dev
ENV PATH="/app/.venv/bin:$PATH"
CMD ["meterhouse", "--help"]
