"""Use cases, one module each: gather from the database, let the pure core decide, apply, return ids."""


class ServiceError(Exception):
    """A request that cannot be carried out; the message is one sentence for the person who made it."""
