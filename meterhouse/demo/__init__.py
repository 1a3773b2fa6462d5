"""The demo organization: a deterministic generator of catalog and usage files, and a loader that
sends them through the public APIs (the billing API for the catalog, the ingest API for events)."""
