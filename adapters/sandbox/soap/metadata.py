"""What ATWS says about itself: the WSDL, getEntityInfo and GetFieldInfo."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from flask import Response
from lxml import etree

from adapters.sandbox.core import SOAP_URL_PATH
from adapters.sandbox.entities import FIELD_INFO
from adapters.sandbox.entity_info import entity_information, field_definitions
from adapters.sandbox.permissions import SecurityLevel
from adapters.sandbox.soap.envelope import (
    ATWS_NS,
    ATWS_NSMAP,
    REST_ENTITY,
    SoapFault,
    add_element,
    soap_envelope,
)

#: The vendored real WSDL the sandbox serves, byte for byte the one in
#: tests/fixtures/autotask/specs/ (trepidity/autotask_ruby atws-1_6.wsdl; a test keeps them equal).
WSDL_FILE = Path(__file__).with_name("atws-v1_6.wsdl")

#: The WSDL's service address, replaced by the sandbox's own when it is served.
WSDL_ADDRESS = "https://webservices2.autotask.net/ATServices/1.6/atws.asmx"

#: EntityInfo elements in WSDL order → the entityInformation key holding their value.
_ENTITY_INFO = (
    ("CanUpdate", "canUpdate"),
    ("CanDelete", "canDelete"),
    ("CanCreate", "canCreate"),
    ("CanQuery", "canQuery"),
    ("HasUserDefinedFields", "hasUserDefinedFields"),
)


#: The entityInformation key saying whether this API user may do what a Can… key allows.
_USER_ACCESS = {
    "canCreate": "userAccessForCreate",
    "canQuery": "userAccessForQuery",
    "canUpdate": "userAccessForUpdate",
}


def _bool(value: object) -> str:
    return "true" if value else "false"


@cache
def _wsdl_text() -> str:
    # The vendored copy starts with a newline before its XML declaration, which XML allows only
    # at the very start of a document; served as the real service serves it, from the declaration.
    return WSDL_FILE.read_text(encoding="utf-8").lstrip()


def wsdl_response(base_url: str) -> Response:
    """The real ATWS 1.6 WSDL with its soap:address pointing at this sandbox."""
    text = _wsdl_text().replace(WSDL_ADDRESS, f"{base_url}{SOAP_URL_PATH}")
    return Response(text, status=200, content_type="text/xml; charset=utf-8")


def entity_info_response(security: SecurityLevel | None = None) -> Response:
    """getEntityInfo: an EntityInfo per entity the sandbox serves over SOAP (WSDL order).

    The WSDL's EntityInfo has no userAccessFor…, so what the API user may not do shows as a
    false Can… (the sandbox's choice: whether real ATWS answers per user is not recorded).
    """
    wrapper = etree.Element(f"{{{ATWS_NS}}}GetEntityInfoResponse", nsmap=ATWS_NSMAP)
    result = add_element(wrapper, "GetEntityInfoResult")
    for soap in sorted(REST_ENTITY):
        # The same answer as REST's {Entity}/entityInformation.
        info = entity_information(REST_ENTITY[soap], security)
        item = add_element(result, "EntityInfo")
        add_element(item, "Name", soap)
        for element, key in _ENTITY_INFO:
            access = _USER_ACCESS.get(key)
            allowed = info[key] and (access is None or info[access] != "None")
            add_element(item, element, _bool(allowed))
    return soap_envelope(wrapper)


def field_info_response(soap: str) -> Response:
    """GetFieldInfo(psObjectType): the entity's Field list, picklists included.

    Built from the same getFieldInfo rows and picklists as REST's entityInformation/fields
    (entities.FIELD_INFO, entity_info.field_definitions), in the WSDL's Field order.
    Real answers leave Description and DefaultValue nil and give ReferenceEntityType and
    PicklistParentValueField as "" when empty (the getFieldInfo cache in
    tests/fixtures/autotask/specs/).
    """
    if soap not in REST_ENTITY:
        # Invented wording: the real answer to an unknown psObjectType was not found.
        raise SoapFault(
            f"Server was unable to process request. ---> The entity type {soap!r} is not"
            f" served by the sandbox over SOAP ({', '.join(sorted(REST_ENTITY))})."
        )
    rest = REST_ENTITY[soap]
    picklists = {
        definition["name"]: definition["picklistValues"] or []
        for definition in field_definitions(rest)
    }
    wrapper = etree.Element(f"{{{ATWS_NS}}}GetFieldInfoResponse", nsmap=ATWS_NSMAP)
    result = add_element(wrapper, "GetFieldInfoResult")
    for row in FIELD_INFO[rest]:
        item = add_element(result, "Field")
        add_element(item, "Name", str(row["name"]))
        add_element(item, "Label", str(row["label"]))
        add_element(item, "Type", str(row["type"]))
        add_element(item, "Length", str(row["length"]))
        add_element(item, "IsRequired", _bool(row["required"]))
        add_element(item, "IsReadOnly", _bool(row["read_only"]))
        add_element(item, "IsQueryable", _bool(row["queryable"]))
        add_element(item, "IsReference", _bool(bool(row["reference"])))
        add_element(item, "ReferenceEntityType", str(row["reference"]))
        add_element(item, "IsPickList", _bool(row["picklist"]))
        values = picklists.get(str(row["rest_name"]), []) if row["picklist"] else []
        if values:
            holder = add_element(item, "PicklistValues")
            for value in values:
                entry = add_element(holder, "PickListValue")
                add_element(entry, "Value", str(value["value"]))
                add_element(entry, "Label", str(value["label"]))
                add_element(entry, "IsDefaultValue", _bool(value["isDefaultValue"]))
                add_element(entry, "SortOrder", str(value["sortOrder"]))
                add_element(entry, "parentValue", str(value["parentValue"] or ""))
                add_element(entry, "IsActive", _bool(value["isActive"]))
                add_element(entry, "IsSystem", _bool(value["isSystem"]))
        add_element(item, "PicklistParentValueField", str(row["picklist_parent"]))
    return soap_envelope(wrapper)
