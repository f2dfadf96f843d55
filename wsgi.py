"""WSGI entry point for a WSGI server of your own: `gunicorn wsgi:app`.

`connector serve` runs gunicorn itself (WEB_CONCURRENCY processes, the database migrated first,
metrics summed across processes); use this module to run another server or your own gunicorn
settings. Then migrate with `connector db upgrade` before starting, and set
PROMETHEUS_MULTIPROC_DIR to an empty directory for /metrics to sum every process's counts.
"""

from connector import create_app
from connector.logs import configure_logging

app = create_app()
configure_logging(app.config)
