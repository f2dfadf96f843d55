"""Generate adapters/sandbox/entities.py and the SOAP target's field order from the real specs.

The sandbox must speak exactly the property names, types, lengths and field order of the real API,
so they are read from the vendored specs (tests/fixtures/autotask/specs, see its README) rather than
typed from memory. The SOAP target writes entities in the same WSDL order, so it gets its own small
generated module (adapters/targets/autotask/soap/fields.py): the product never imports the sandbox.
Run `python tools/gen_sandbox_entities.py` after changing the specs or the entity lists;
tests/adapters/sandbox/test_entities.py and tests/adapters/targets/autotask/soap/test_fields.py
fail when a committed file is stale.
"""

from __future__ import annotations

import json
import pprint
import subprocess
import sys
from pathlib import Path

from lxml import etree

from connector.safe_xml import parse_untrusted

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "tests" / "fixtures" / "autotask" / "specs"
SWAGGER = SPECS / "autotask-rest-swagger-v1.0.SergLGP-2022.json"
WSDL = SPECS / "atws-v1_6.trepidity-autotask_ruby.wsdl"
FIELD_INFO = SPECS / "atws-v1_6-getFieldInfo-cache.ecitsolutions-2021-02.xml"
TARGET = ROOT / "adapters" / "sandbox" / "entities.py"
FIELDS_TARGET = ROOT / "adapters" / "targets" / "autotask" / "soap" / "fields.py"

#: REST entity → (REST model, SOAP entity).
ENTITIES = {
    "Tickets": ("TicketModel", "Ticket"),
    "TicketNotes": ("TicketNoteModel", "TicketNote"),
    "Companies": ("CompanyModel", "Account"),
    # Work types are billing codes (SOAP AllocationCode) of use type 1: Ticket.billingCodeID.
    "BillingCodes": ("BillingCodeModel", "AllocationCode"),
}

#: SOAP field names that REST renamed. Reference: ../shared/reference/autotask-api.md §3 and §9.
SOAP_RENAMES = {
    "Ticket": {
        "AccountID": "companyID",
        "InstalledProductID": "configurationItemID",
        "AllocationCodeID": "billingCodeID",
        "AEMAlertID": "rmmAlertID",
        "BusinessDivisionSubdivisionID": "organizationalLevelAssociationID",
        "AccountPhysicalLocationID": "companyLocationID",
    },
    "Account": {
        "AccountName": "companyName",
        "AccountNumber": "companyNumber",
        "AccountType": "companyType",
        # The rest are inferred by name: REST renamed Account→Company and flags to is….
        "ParentAccountID": "parentCompanyID",
        "Active": "isActive",
        "TaskFireActive": "isTaskFireActive",
        "ClientPortalActive": "isClientPortalActive",
        "TaxExempt": "isTaxExempt",
        "EnabledForComanaged": "isEnabledForComanaged",
        "BillToAddress1": "billingAddress1",
        "BillToAddress2": "billingAddress2",
        "BillToAccountPhysicalLocationID": "billToCompanyLocationID",
        "InvoiceNonContractItemsToParentAccount": "invoiceNonContractItemsToParentCompany",
        "SurveyAccountRating": "surveyCompanyRating",
    },
    "AllocationCode": {
        # Inferred by meaning: REST renamed the flags to is… and the ledger code to an account.
        "Active": "isActive",
        "GeneralLedgerCode": "generalLedgerAccount",
        "Type": "billingCodeType",
    },
}

#: The SOAP entities the ticket target writes (creates and updates), for FIELDS_TARGET.
TARGET_ENTITIES = ("Ticket", "TicketNote")

PS = {"p": "http://schemas.microsoft.com/powershell/2004/04"}
XS = {"wsdl": "http://schemas.xmlsoap.org/wsdl/", "s": "http://www.w3.org/2001/XMLSchema"}


def rest_properties(swagger: dict[str, object], model: str) -> dict[str, str]:
    """Property name → type tag (int32, int64, double, boolean, string, date-time, udfs)."""
    definitions = swagger["definitions"]
    assert isinstance(definitions, dict)
    props: dict[str, str] = {}
    for name, schema in definitions[model]["properties"].items():
        if schema.get("readOnly") and "$ref" in schema:
            continue  # swagger-generator artifacts such as soapParentPropertyId are never sent
        if schema.get("type") == "array":
            props[name] = "udfs"
        else:
            props[name] = schema.get("format") or schema["type"]
    return props


def soap_field_order(wsdl_root: etree._Element, entity: str) -> list[str]:
    """The entity's own elements in WSDL sequence order (xsd:sequence makes order significant)."""
    names = wsdl_root.xpath(
        f"//wsdl:types/s:schema/s:complexType[@name='{entity}']"
        "/s:complexContent/s:extension/s:sequence/s:element/@name",
        namespaces=XS,
    )
    return [str(name) for name in names]


def field_info(root: etree._Element, entity: str) -> list[dict[str, object]]:
    """getFieldInfo rows of one SOAP entity: name, type, length and the is-flags."""
    entries = root.xpath(
        f"//p:Obj[@N='FieldInfoCache']/p:DCT/p:En[p:S[@N='Key']='{entity}']", namespaces=PS
    )
    (entry,) = entries
    rows = []
    for props in entry.xpath(".//p:Obj[@N='FieldInfo']//p:Obj/p:Props", namespaces=PS):

        def text(name: str, props: etree._Element = props) -> str:
            return str(props.findtext(f"p:*[@N='{name}']", default="", namespaces=PS) or "")

        rows.append(
            {
                "name": text("Name"),
                "label": text("Label"),
                "type": text("Type"),
                "length": int(text("Length") or 0),
                "required": text("IsRequired") == "true",
                "read_only": text("IsReadOnly") == "true",
                "queryable": text("IsQueryable") == "true",
                "reference": text("ReferenceEntityType") if text("IsReference") == "true" else "",
                "picklist": text("IsPickList") == "true",
                "picklist_parent": text("PicklistParentValueField"),
            }
        )
    return rows


def generate() -> str:
    """Return the source text of entities.py."""
    swagger = json.loads(SWAGGER.read_text(encoding="utf-8"))
    wsdl_root = parse_untrusted(WSDL.read_bytes().lstrip())
    info_root = parse_untrusted(FIELD_INFO.read_bytes())
    rest: dict[str, dict[str, str]] = {}
    soap_order: dict[str, list[str]] = {}
    soap_to_rest: dict[str, dict[str, str]] = {}
    fields: dict[str, list[dict[str, object]]] = {}
    for entity, (model, soap_entity) in ENTITIES.items():
        rest[entity] = rest_properties(swagger, model)
        soap_order[soap_entity] = soap_field_order(wsdl_root, soap_entity)
        lower = {name.lower(): name for name in rest[entity]}
        renames = SOAP_RENAMES.get(soap_entity, {})
        rows = field_info(info_root, soap_entity)
        mapping: dict[str, str] = {}
        for soap_name in ["id", *soap_order[soap_entity], *(str(row["name"]) for row in rows)]:
            rest_name = renames.get(soap_name) or lower.get(soap_name.lower())
            if rest_name:
                mapping[soap_name] = rest_name
        soap_to_rest[soap_entity] = mapping
        for row in rows:
            row["rest_name"] = mapping.get(str(row["name"]), "")
        fields[entity] = rows
    body = [
        '"""Autotask entity shapes, generated from the real specs by',
        "tools/gen_sandbox_entities.py.",
        "",
        "Do not edit by hand. Sources (tests/fixtures/autotask/specs/README.md):",
        f"REST properties from {SWAGGER.name};",
        f"SOAP field order from {WSDL.name};",
        "field metadata (lengths, required, read-only) from",
        f"{FIELD_INFO.name}.",
        '"""',
        "",
        "from typing import Any",
        "",
        "#: REST entity → its SOAP entity name.",
        f"SOAP_ENTITY = {pprint.pformat({k: v[1] for k, v in ENTITIES.items()})}",
        "",
        "#: REST entity → {property: type tag}, in Swagger order.",
        f"REST_PROPERTIES: dict[str, dict[str, str]] = {pprint.pformat(rest, sort_dicts=False)}",
        "",
        "#: SOAP entity → its own elements in WSDL xsd:sequence order.",
        f"SOAP_FIELD_ORDER: dict[str, list[str]] = {pprint.pformat(soap_order)}",
        "",
        "#: SOAP entity → {SOAP field: REST property} for every field both APIs share.",
        f"SOAP_TO_REST: dict[str, dict[str, str]] = {pprint.pformat(soap_to_rest)}",
        "",
        "#: REST entity → getFieldInfo rows (SOAP name, REST name, type, length, flags).",
        f"FIELD_INFO: dict[str, list[dict[str, Any]]] = {pprint.pformat(fields, sort_dicts=False)}",
        "",
    ]
    return formatted("\n".join(body), TARGET)


def generate_fields() -> str:
    """Return the source text of the SOAP target's fields.py."""
    wsdl_root = parse_untrusted(WSDL.read_bytes().lstrip())
    order = {entity: tuple(soap_field_order(wsdl_root, entity)) for entity in TARGET_ENTITIES}
    body = [
        '"""The field order of the entities the SOAP target writes, generated from the WSDL by',
        "tools/gen_sandbox_entities.py.",
        "",
        f"Do not edit by hand. Source: tests/fixtures/autotask/specs/{WSDL.name}",
        "(the xs:sequence of each complexType, after the Entity base's Fields, id and",
        "UserDefinedFields). Elements of an xs:sequence must come in this order, so entities",
        "are written in it.",
        '"""',
        "",
        "#: SOAP entity → its own elements in WSDL xs:sequence order.",
        f"FIELD_ORDER: dict[str, tuple[str, ...]] = {pprint.pformat(order, sort_dicts=False)}",
        "",
    ]
    return formatted("\n".join(body), FIELDS_TARGET)


def formatted(source: str, target: Path) -> str:
    """`source` as ruff formats it for `target`'s place in the tree."""
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(target), "-"],
        input=source,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return result.stdout


if __name__ == "__main__":
    for target, text in ((TARGET, generate()), (FIELDS_TARGET, generate_fields())):
        target.write_text(text, encoding="utf-8")
        print(f"wrote {target.relative_to(ROOT)}")
