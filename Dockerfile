# One image for every HealthPay process; the command decides which one runs.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY schemas ./schemas
COPY infrastructure ./infrastructure
COPY command_service ./command_service
COPY projection_service ./projection_service
COPY api_gateway ./api_gateway
COPY cli ./cli
RUN pip install --no-cache-dir . && useradd --uid 10001 healthpay
USER healthpay
EXPOSE 3000
CMD ["healthpay", "serve-commands", "--host", "0.0.0.0"]
