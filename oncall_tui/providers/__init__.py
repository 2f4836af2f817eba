"""Async clients for the external systems: one module per vendor, over one shared HTTP client."""
