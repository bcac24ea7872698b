"""Confirmation emails (R9–R11): `render` builds a message, `smtp` sends many, `sink` receives them on loopback.

Nothing is re-exported here: `pipeline.mail.render` stays the module (not its function), so that
`mock.patch("pipeline.mail.render.…")` and `import pipeline.mail.render as render` work as read.
"""
