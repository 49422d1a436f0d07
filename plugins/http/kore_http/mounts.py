"""Mounts: a path prefix served by one object instead of routes.

Filemaps (``domain.filemaps``), WSGI applications (``kore.mount``) and a
proxy plugin's mounts are all ``Mount`` objects in ``domain.mounts``,
tried in declaration order after the routes (``routing.resolve``).
"""


class Mount:
    """Base class of every mount.

    ``prefix``      the path prefix ("" for the whole domain)
    ``where``       how logs name it ("filemap /static")
    ``auth``        a ``declare.Auth`` checked before ``serve`` (or None)
    ``reads_body``  True when ``serve`` reads the request body itself
                    through ``req.stream.read_body`` (a proxy streaming it
                    upstream); otherwise the pipeline reads it first
    """

    prefix = ""
    where = "mount"
    auth = None
    reads_body = False

    def match(self, path):
        """True when this mount serves ``path``."""
        p = self.prefix
        return not p or path == p or path.startswith(p + "/")

    @property
    def callback(self):
        """What the pipeline calls, as a route's callback: ``serve``."""
        return self.serve

    def serve(self, req):
        """Answer ``req`` (a handler: it must send a response)."""
        raise NotImplementedError
