"""HTTP face of the connector: the only code that touches flask.request."""
