"""Autotask's SOAP 1.6 API (ATWS) as the sandbox serves it.

One endpoint, POST /ATServices/1.6/atws.asmx, SOAP 1.1 document/literal. Shapes follow the WSDL
(tests/fixtures/autotask/specs/atws-v1_6.trepidity-autotask_ruby.wsdl) and the real responses
quoted in ../shared/reference/autotask-api.md §10. Records are read and written through the same
SandboxService as the REST face, in REST property names; this package only translates:
endpoint.py routes and dispatches calls, envelope.py reads requests and writes envelopes and
Faults, records.py encodes and decodes ATWS entities, queryxml.py parses queries, batch.py
applies create and update batches all or nothing, metadata.py serves the WSDL, getEntityInfo
and GetFieldInfo.
"""
