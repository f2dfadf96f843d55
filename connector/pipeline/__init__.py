"""The flow of an alert: intake and ingest, the outbox, the worker and its planner, the governor."""
