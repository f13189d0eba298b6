"""The web layer: the Flask app factory and everything served over HTTP, plus the process entry points.

`app` builds the app (webhook receiver, health check, admin API), `dashboard` the admin pages
and their `templates/`, `metrics` the Prometheus endpoint, `context` the store of the current
app (`get_store`, so no web module imports `app` back), `server` runs it under gunicorn and
`lambda_handlers` are the AWS Lambda entry points. Views translate HTTP to service calls and back.
"""
