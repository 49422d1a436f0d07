"""kore-plugin-curl: ``kore.httpclient`` and ``kore.curl`` on pycurl's multi
interface, driven by the gevent loop of each worker."""

__version__ = "0.1.0"

from .client import curl, curlop, httpclient, httpclientop  # noqa: E402
from .options import CONSTANTS  # noqa: E402

__all__ = ["curl", "curlop", "httpclient", "httpclientop", "CONSTANTS"]
