"""kore-plugin-gateway: bearer tokens and JWTs, Skitai's Authorizer,
transaction ids and rate limits in front of kore routes and mounts."""
