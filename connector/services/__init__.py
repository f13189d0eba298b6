"""Services: the use cases, one a module, each driving storage, the domain and the adapters.

`ingest` turns a verified webhook into stored orders and new stages, `evaluation` runs the stage
rules over a shop, `sync` writes changed contacts to the email tools through the outbox,
`backfill` reads a platform's history, `csv_import` loads a file, `demo` runs the demo shop, and
`reports`, `customer_view` and `metrics` answer questions about the data. Web, CLI and Lambda
entry points call these; services never import `connector.web` or `connector.cli`.
"""
