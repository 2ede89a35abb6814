"""The trigger page's payload help: read from the actor's payload model, and its example passes."""

from __future__ import annotations

import enum

import pydantic
import pytest

import docjobs
import docjobs.actors  # noqa: F401 - declares docjobs' jobs
import tests.support.actors  # noqa: F401 - declares jobs the way an app does
from docjobs import registry
from docjobs.web.board import payload_schema
from docjobs.web.board.actions import ActionError


class Colour(enum.StrEnum):
    RED = "RED"
    BLUE = "BLUE"


class Person(pydantic.BaseModel):
    email: pydantic.EmailStr
    name: str = pydantic.Field("", description="As the email greets them.")


@docjobs.actor("unit.payload-help", display_name="Payload Help")
def payload_help(
    *,
    team_id: int,
    people: list[Person],
    colour: Colour,
    note: str | None = None,
    retries: int = pydantic.Field(3, ge=1, description="How often to try."),
    sent_at: pydantic.AwareDatetime | None = None,
    blob: object = None,
) -> None:
    """An app's job with a nested list, an enum, a described field and a datetime."""


@pytest.mark.parametrize("job", sorted(registry.declared()))
def test_every_declared_jobs_example_passes_its_checks(job: str) -> None:
    actor = registry.get(job)
    schema = payload_schema.of_job(job)
    actor.validate(schema.example)  # raises PayloadError naming the field if not
    required = {field.name for field in schema.fields if field.required and "." not in field.name}
    assert required <= set(schema.example)


def test_an_app_jobs_fields_are_named_typed_and_described() -> None:
    schema = payload_schema.of_job("unit.payload-help")
    rows = {
        field.name: (field.type, field.required, field.default, field.description) for field in schema.fields
    }
    assert {
        "teamId": ("integer", True, None, None),
        "people": ("list of object (Person)", True, None, None),
        "people[].email": ("string (email address)", True, None, None),
        "people[].name": ("string", False, '""', "As the email greets them."),
        "colour": ('one of: "RED", "BLUE"', True, None, None),
        "note": ("string or null", False, "null", None),
        "retries": ("integer", False, "3", "How often to try."),
        "sentAt": ("string (date and time) or null", False, "null", None),
        "blob": ("any JSON value", False, "null", None),
    } == rows
    assert schema.described
    assert {
        "teamId": 1,
        "people": [{"email": "someone@example.com", "name": ""}],
        "colour": "RED",
        "retries": 3,
    } == schema.example
    assert "Payload Help" == schema.display_name


def test_an_unknown_job_is_refused_naming_the_closest() -> None:
    with pytest.raises(ActionError) as refused:
        payload_schema.of_job("unit.payload-hlep")
    assert (404, "no job 'unit.payload-hlep' is declared; did you mean 'unit.payload-help'?") == (
        refused.value.status,
        refused.value.reason,
    )
