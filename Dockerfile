# The one image of every vialflow service (workers, beat, Flower, migrations, the CLI); compose builds it once.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /app

# Dependencies in a layer of their own, read from pyproject.toml (main and `ops`, i.e. Flower) and pinned by
# constraints.txt: a change of code does not reinstall them.
COPY pyproject.toml README.md constraints.txt ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['ops']))" > /tmp/requirements.txt \
 && pip install -c constraints.txt -r /tmp/requirements.txt && rm /tmp/requirements.txt

COPY pipeline ./pipeline
COPY workers ./workers
COPY schedules ./schedules
COPY fixtures ./fixtures
# Editable, because `vialflow demo` finds the shipped fixtures beside the package (/app/fixtures). Everything it
# needs is installed above, so this only registers the package and its commands.
RUN pip install -c constraints.txt -e '.[ops]' \
 && useradd --uid 1000 --create-home vialflow \
 && install -d -o vialflow -g vialflow /exports
USER vialflow
CMD ["celery", "-A", "workers", "worker", "--loglevel", "INFO"]
