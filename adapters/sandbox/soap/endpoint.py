"""The SOAP endpoint: POST /ATServices/1.6/atws.asmx routed through the sandbox's call pipeline to
the operation it names, and the WSDL by GET."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, Response, request
from lxml import etree
from werkzeug.exceptions import RequestEntityTooLarge

from adapters.sandbox.core import SOAP_PATH, SOAP_URL_PATH, Call, Sandbox, new_call
from adapters.sandbox.errors import SandboxError
from adapters.sandbox.soap.batch import apply_all_or_nothing, read_batch
from adapters.sandbox.soap.envelope import (
    ATWS_NS,
    ATWS_NSMAP,
    REST_ENTITY,
    SoapFault,
    SoapRequest,
    add_element,
    entity_elements,
    fault_response,
    parse_request,
    soap_envelope,
    unauthorized_response,
)
from adapters.sandbox.soap.metadata import entity_info_response, field_info_response, wsdl_response
from adapters.sandbox.soap.queryxml import MAX_QUERY_RECORDS, parse_queryxml
from adapters.sandbox.soap.records import atws_response


def _basic() -> tuple[str | None, str | None]:
    """The HTTP Basic user name and password of the request, if it carries them."""
    auth = request.authorization
    if auth is None or auth.type.lower() != "basic":
        return None, None
    return auth.username, auth.password


class _Handler:
    """One SOAP request's operation, answering ATWSResponse (or ATWSZoneInfo) envelopes."""

    def __init__(self, sandbox: Sandbox, call: Call, soap_request: SoapRequest) -> None:
        self.sandbox = sandbox
        self.service = sandbox.service
        self.call = call
        self.request = soap_request

    def __call__(self) -> Response:
        operation = self.request.operation
        handlers: dict[str, Callable[[], Response]] = {
            "create": self.write,
            "update": self.write,
            "query": self.query,
            "getZoneInfo": self.zone_info,
            "getThresholdAndUsageInfo": self.threshold,
            "GetEntityInfo": lambda: entity_info_response(self.service.security),
            "GetFieldInfo": lambda: field_info_response(self.request.entity or ""),
        }
        try:
            return handlers[operation]()
        except SoapFault as fault:
            return fault_response(fault.message, code=fault.code, status=fault.status)

    def write(self) -> Response:
        operation = self.request.operation
        try:
            elements = entity_elements(self.request.body)
            batch = read_batch(operation, elements, strict=self.service.strict_properties)
            records = apply_all_or_nothing(self.service, operation, batch)
        except SandboxError as e:
            return atws_response(operation, soap=self.request.entity, errors=e.messages)
        response = atws_response(operation, soap=self.request.entity, records=records)
        if operation == "create":
            for entity in dict.fromkeys(entity for entity, _ in batch):
                self.sandbox.after_create(REST_ENTITY[entity], self.call)
        return response

    def query(self) -> Response:
        queryxml = self.request.queryxml
        if queryxml is None:  # parse_request always sets it for query
            raise SoapFault("The query has no sXML.")
        try:
            soap, tree = parse_queryxml(queryxml)
            records, _ = self.service.query(REST_ENTITY[soap], tree, max_records=MAX_QUERY_RECORDS)
        except SandboxError as e:
            return atws_response("query", soap=self.request.entity, errors=e.messages)
        return atws_response("query", soap=soap, records=records)

    def zone_info(self) -> Response:
        user = (self.request.body.findtext(f"{{{ATWS_NS}}}UserName") or "").strip()
        wrapper = etree.Element(f"{{{ATWS_NS}}}getZoneInfoResponse", nsmap=ATWS_NSMAP)
        result = add_element(wrapper, "getZoneInfoResult")
        known = bool(user) and user.lower() == self.sandbox.config.user.username.lower()
        if known:
            add_element(result, "URL", f"{request.host_url}{SOAP_URL_PATH}")
        # "a negative ErrorCode" means the lookup failed (OFFICIAL GetZoneInfoCall.htm).
        # Reference: autotask-api.md §10.
        add_element(result, "ErrorCode", "0" if known else "-1")
        add_element(result, "DataBaseType", "Pro" if known else None)
        add_element(result, "CI", str(self.sandbox.config.ci if known else 0))
        if known:
            add_element(result, "WebUrl", f"{request.host_url}_sandbox/")
        return soap_envelope(wrapper)

    def threshold(self) -> Response:
        settings = self.sandbox.limits.settings
        # The wording of the real answer (trepidity/autotask_ruby fixture
        # threshold_and_usage_info_response.xml). Reference: autotask-api.md §10.
        message = (
            f"ThresholdOfExternalRequest: {settings.hourly_threshold};"
            f" TimeframeOfLimitation: {settings.timeframe_minutes};"
            f" numberOfExternalRequest: {self.sandbox.limits.usage()};"
        )
        return atws_response("getThresholdAndUsageInfo", info_message=message)


def register_soap(app: Flask, sandbox: Sandbox) -> None:
    """Mount the SOAP endpoint on `app`."""

    @app.get(SOAP_PATH)
    @app.get(SOAP_PATH.removesuffix(".asmx") + ".wsdl")
    def autotask_wsdl() -> Response:
        # ASMX serves its WSDL at atws.asmx?WSDL (any case); clients also ask for atws.wsdl
        # (python-atws replaces asmx by wsdl, autotask-api.md §10). No authentication: clients
        # fetch it before they have a zone (opendns/autotask-php #86).
        call = new_call("soap", "soap:wsdl", "wsdl")
        if request.path.endswith(".asmx") and "wsdl" not in {k.lower() for k in request.args}:
            # Real ASMX shows an HTML help page here; the sandbox has none (invented text).
            return sandbox.run(
                call,
                lambda: Response(
                    "The sandbox serves SOAP calls by POST and the WSDL at atws.asmx?WSDL.",
                    status=404,
                    content_type="text/plain; charset=utf-8",
                ),
                lambda e: _pipeline_error(sandbox, call, "", e),
                credentials=None,
            )
        return sandbox.run(
            call,
            lambda: wsdl_response(request.host_url),
            lambda e: _pipeline_error(sandbox, call, "", e),
            credentials=None,
        )

    @app.post(SOAP_PATH)
    def autotask_soap() -> Response:
        try:
            soap_request = parse_request(request.get_data())
        except RequestEntityTooLarge:
            return _refused(sandbox, SoapFault("The request is too large.", status=413))
        except SoapFault as fault:
            return _refused(sandbox, fault)
        operation = soap_request.operation
        if operation in ("getThresholdAndUsageInfo", "GetEntityInfo"):
            thread_key = f"soap:{operation}"
        else:
            thread_key = f"soap:{soap_request.entity or operation}"
        call = new_call("soap", thread_key, operation)

        def credentials() -> tuple[str | None, str | None, str | None]:
            return (*_basic(), soap_request.integration_code)

        return sandbox.run(
            call,
            _Handler(sandbox, call, soap_request),
            lambda e: _pipeline_error(sandbox, call, operation, e),
            # getZoneInfo "does not require authentication or a tracking identifier"
            # (OFFICIAL GetZoneInfoCall.htm), so it skips auth and limits. autotask-api.md §10.
            credentials=None if operation == "getZoneInfo" else credentials,
        )


def _refused(sandbox: Sandbox, fault: SoapFault) -> Response:
    """Answer a request the SOAP stack cannot read with a Fault, through the pipeline.

    IIS checks HTTP Basic before ASP.NET reads the body, so only Basic applies; the integration
    code is checked by the web method, which an unreadable request never reaches.
    """
    call = new_call("soap", "soap", "invalid")

    def credentials() -> tuple[str | None, str | None, str | None]:
        return (*_basic(), sandbox.config.user.integration_code)

    return sandbox.run(
        call,
        lambda: fault_response(fault.message, code=fault.code, status=fault.status),
        lambda e: _pipeline_error(sandbox, call, "", e),
        credentials=credentials,
    )


def _pipeline_error(sandbox: Sandbox, call: Call, operation: str, error: SandboxError) -> Response:
    """Map a refusal from Sandbox.run (faults, limits, authentication) to the SOAP shapes."""
    if call.fault:
        # Injected faults: a Fault with the status the plan chose.
        code = "Client" if error.status < 500 else "Server"
        return fault_response("; ".join(error.messages), code=code, status=error.status)
    if error.status == 429:
        # The thread limit and the hourly threshold. ASMX answers a refusal with a soap:Server
        # Fault and HTTP 500, not a 429; how real ATWS words and codes these is not recorded
        # (autotask-api.md §8, §10 and §14 cover REST only), so this is the sandbox's choice,
        # with the real REST wording as faultstring.
        return fault_response("; ".join(error.messages), code="Server", status=500)
    if error.status not in (401, 500):
        code = "Client" if error.status < 500 else "Server"
        return fault_response("; ".join(error.messages), code=code, status=error.status)
    if not operation:  # unreadable request: only Basic was checked, so this is a 401 anyway
        return unauthorized_response()
    username, secret = _basic()
    try:
        sandbox.authenticate(username, secret, sandbox.config.user.integration_code)
    except SandboxError:
        # Wrong secret or unknown user: IIS refuses HTTP Basic with a 401 (autotask-api.md §10).
        return unauthorized_response()
    # Basic passed, so the AutotaskIntegrations code is what failed: an ATWSResponse error
    # (MattParr/python-atws issue #64). Reference: autotask-api.md §10. getEntityInfo and
    # GetFieldInfo answer other types (ArrayOfEntityInfo, ArrayOfField) that cannot carry an
    # error, so for them the same text comes as a Fault (the sandbox's choice; not recorded).
    if operation in ("GetEntityInfo", "GetFieldInfo"):
        return fault_response("IntegrationCode is invalid.", code="Client")
    return atws_response(operation, errors=["IntegrationCode is invalid."])
