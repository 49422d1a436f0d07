"""kore-plugin-websocket: Kore's websocket API and socketify-style topics."""
