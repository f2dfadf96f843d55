"""WSGI entry point for a production server: `gunicorn wsgi:app`."""

from connector import create_app
from connector.logs import configure_logging

app = create_app()
configure_logging(app.config)
