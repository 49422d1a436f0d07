"""kore-plugin-acme: automatic certificates (ACME) for kore.domain(acme=True)."""
