"""The adapters: the database (`db`), the files in and out (`files`) and email (`mail`). No rule lives here."""
