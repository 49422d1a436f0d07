"""kore-plugin-redis: the ``redis`` and ``redis-streams`` backplane drivers of
kore-plugin-websocket (entry-point group ``kore.websocket.backplane``)."""
