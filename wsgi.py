"""WSGI entry point for a production server: `gunicorn wsgi:app`."""

from connector import create_app

app = create_app()
