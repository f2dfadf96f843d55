"""Errors the sandbox answers with, in Autotask's own shapes."""

from __future__ import annotations


class SandboxError(Exception):
    """A request Autotask would refuse: REST answers `{"errors": [...]}`, SOAP an ATWSError list.

    Real Autotask answers validation and lookup failures with HTTP 500 and this body.
    Reference: ../shared/reference/autotask-api.md §7.
    """

    def __init__(self, *messages: str, status: int = 500) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)
        self.status = status


class AuthFailure(SandboxError):
    """Credentials Autotask refuses: a wrong secret is 401, an unknown user or code is 500.

    Reference: autotask-api.md §2 (apigrate/autotask-restapi issue #19).
    """


# -- Autotask's own wording ------------------------------------------------------------------
#
# Texts real tenants answered with, each with its public source (autotask-api.md §14). Their
# record numbers differ between the sources ([1] for references, [0] for required fields); each is
# kept as quoted, since the sandbox cannot tell which one Autotask would really put there.


def reference_error(prop: str, entity_type: str) -> str:
    """A reference to a record that does not exist, is inactive or does not fit the ticket.

    Real: `Reference value on field: contactID of type: Contact does not exist or is invalid. ;
    on record number [1].` (autotask-api.md §14; msoukhomlinov/n8n-nodes-autotask, whose
    inactive-entity handling shows inactive contacts and resources are refused this way).
    `entity_type` is the field's getFieldInfo ReferenceEntityType (Account, AllocationCode,
    InstalledProduct, …): the quoted "Contact" is ContactID's. Whether REST names the REST entity
    (Company, BillingCode, …) for renamed types instead is unconfirmed.
    """
    return (
        f"Reference value on field: {prop} of type: {entity_type} does not exist or is invalid."
        " ; on record number [1]."
    )


def required_error(prop: str) -> str:
    """A required field with no value.

    Real: `dueDateTime is required.; on record number [0].` (WYRE-AI/autotask-mcp PR #288).
    """
    return f"{prop} is required.; on record number [0]."


def length_error(prop: str) -> str:
    """A string longer than the field allows, counted in UTF-16 code units.

    Real: `String value exceeds maximum length (field:description).` (n8n-nodes-autotask #48); the
    quoted form has no record-number suffix.
    """
    return f"String value exceeds maximum length (field:{prop})."
