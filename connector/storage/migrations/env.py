"""Alembic environment: runs on the connection `connector.storage.store` hands over (no alembic.ini needed)."""

from alembic import context

from connector.storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # `alembic` command line, for writing new revisions
    from sqlalchemy import create_engine

    connection = create_engine(context.config.get_main_option("sqlalchemy.url")).connect()

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
