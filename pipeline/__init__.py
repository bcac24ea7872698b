"""vialflow: allocation of national vaccine ordering sessions. Layers: `domain` (pure rules), `adapters`
(database, files, mail), `services` (use cases), `entrypoints` (CLI, runner, Celery app); `bootstrap` wires them."""
