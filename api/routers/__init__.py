"""Per-domain routers, assembled by api.main."""
