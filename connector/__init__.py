"""stagesync's core, one folder per layer (docs/architecture.md, 'Layers'): `domain` (pure rules),
`storage` (all SQL), `services` (the use cases), `web` (HTTP, gunicorn and Lambda entry points)
and `cli`; `config`, `errors` and `logs` serve them all. Imports point down only."""
