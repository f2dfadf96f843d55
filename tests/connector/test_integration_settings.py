"""Integration settings: `status_on_acknowledge` and the flavour's default for it."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.targets.autotask.profile import REST_PROFILE, SOAP_PROFILE
from connector.integrations.settings import ValidationError, load_settings
from connector.ports import TargetProfile

PROFILES = {"rest": REST_PROFILE, "soap": SOAP_PROFILE}


@pytest.mark.parametrize(
    ("given", "flavour", "sets_status"),
    [
        ({}, "rest", True),  # unset: REST's update is one call
        ({}, "soap", False),  # unset: SOAP's update costs a read first
        ({"status_on_acknowledge": None}, "soap", False),
        ({"status_on_acknowledge": True}, "soap", True),
        ({"status_on_acknowledge": False}, "rest", False),
    ],
)
def test_status_on_acknowledge_defaults_to_the_flavours_choice(
    given: dict[str, Any], flavour: str, sets_status: bool
) -> None:
    settings = load_settings(given)
    profile: TargetProfile = PROFILES[flavour]

    assert settings.acknowledge_sets_status(profile) is sets_status
    assert settings.policy(profile).status_on_acknowledge is sets_status


def test_status_on_acknowledge_unset_without_a_flavour_sets_the_status() -> None:
    assert load_settings({}).policy().status_on_acknowledge is True


@pytest.mark.parametrize("value", ["maybe", 2, [True]])
def test_status_on_acknowledge_takes_a_boolean_or_null(value: object) -> None:
    with pytest.raises(ValidationError) as refused:
        load_settings({"status_on_acknowledge": value})

    assert "status_on_acknowledge" in refused.value.messages
