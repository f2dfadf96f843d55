"""Autotask PSA as a ticket target: its facts (profile), the HTTP base and refusal errors that REST
and SOAP share, and one package per API flavour."""
