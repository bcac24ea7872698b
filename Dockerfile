FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY pipeline ./pipeline
COPY workers ./workers
COPY schedules ./schedules
COPY fixtures ./fixtures
RUN pip install --no-cache-dir -c constraints.txt -e . flower && useradd --create-home vialflow
USER vialflow
CMD ["celery", "-A", "workers", "worker", "--loglevel", "INFO"]
