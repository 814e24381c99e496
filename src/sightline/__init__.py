"""Sightline: self-hosted, privacy-first web and product analytics."""

__version__ = "0.1.0"
