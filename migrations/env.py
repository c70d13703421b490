"""Alembic environment for the registry.

Normally run through linkage.store.database (`cci db upgrade`, and every database command),
which hands over a connection inside a locked write transaction. The alembic command line
works too (alembic.ini): it then uses `sqlalchemy.url`, else CCI_DATABASE_URL; `--sql` writes
the SQL instead of running it.
"""

from alembic import context

from linkage.store.database import database_url, make_engine
from linkage.store.models import Base

config = context.config


def _configure(**options: object) -> None:
    context.configure(target_metadata=Base.metadata, compare_type=True, **options)


if context.is_offline_mode():
    url = database_url(config.get_main_option("sqlalchemy.url"))
    _configure(url=url, literal_binds=True, render_as_batch=url.startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()
elif (connection := config.attributes.get("connection")) is not None:
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as connection:
            _configure(connection=connection, render_as_batch=engine.dialect.name == "sqlite")
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()
