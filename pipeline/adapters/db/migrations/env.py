"""Alembic environment: migrations run on the connection `pipeline.adapters.db.migrate` hands over."""

from alembic import context
from sqlalchemy import create_engine

from pipeline.adapters.db.tables import Base

config = context.config
connection = config.attributes.get("connection")

if connection is None:  # `alembic` command line: the URL comes from the config
    with create_engine(config.get_main_option("sqlalchemy.url")).connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
