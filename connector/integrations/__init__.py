"""Integrations: settings and their schemas, webhook credentials, delivery requests, bootstrap."""
