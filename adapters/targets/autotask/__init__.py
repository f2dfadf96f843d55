"""Autotask PSA as a ticket target: what REST and SOAP share, and one package per API flavour."""
