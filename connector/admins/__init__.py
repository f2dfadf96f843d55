"""Admins of the web form: argon2id passwords, accounts and sessions, slowing down guessing.

No admin exists until one is made (`connector create-admin`, or CONNECTOR_ADMIN_USERNAME and
CONNECTOR_ADMIN_PASSWORD when none exists yet): there are no default credentials.
"""
