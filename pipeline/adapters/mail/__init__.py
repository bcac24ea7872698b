"""Confirmation emails (R9–R11): `render` builds a message, `smtp` sends many, `sink` receives them on loopback.

Nothing is re-exported here: `pipeline.adapters.mail.render` stays the module (not its function), so that
`mock.patch("pipeline.adapters.mail.render.…")` and `import pipeline.adapters.mail.render as render` work as read.
"""
