"""The gateway's error type (its own module: jwks and tokens both raise it)."""


class InvalidToken(Exception):
    """The token is not acceptable; ``str(exc)`` is safe to show the client
    (it never contains the token)."""
