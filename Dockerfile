# One image for every BigBrotr process; docker-compose.yaml picks the command per service.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bigbrotr ./bigbrotr
COPY connectors ./connectors
COPY streams ./streams
COPY schemas ./schemas
COPY migrations ./migrations
RUN pip install --no-cache-dir -e .
ENTRYPOINT ["bigbrotr"]
