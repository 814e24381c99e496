"""The HTTP API: analytics queries, administration, health and metrics."""
