"""Warm stores: DuckDB (embedded default); the schema lives in migrations/."""
