"""Storage: the database engine, its transactions and every SQL statement of stagesync.

`engine` opens SQLite or PostgreSQL, migrates (Alembic, `migrations/`) and hands out
transactions; `schema` declares the tables; the per-table query modules (`orders`, `customers`,
`intake`, `outbox`) hold the statements, and `store.Store` gathers them behind one object that
services receive. `statements` and `group_commit` serve the webhook path's hot writes. Nothing
outside this package writes SQL; it imports only the domain, `connector.config` and `connector.errors`.
"""
