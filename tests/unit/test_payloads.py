from __future__ import annotations

import pydantic
import pytest

import docjobs
from docjobs import registry
from docjobs.errors import PayloadError


class RequestMetadata(pydantic.BaseModel):
    ip_address: pydantic.IPvAnyAddress | None = pydantic.Field(None, alias="ipAddress")
    user_agent: str | None = pydantic.Field(None, alias="userAgent")


@docjobs.actor("unit.seal", display_name="Seal Document")
def seal(
    *,
    document_id: int,
    send_email: bool = True,
    is_resealing: bool = False,
    request_metadata: RequestMetadata | None = None,
) -> dict[str, object]:
    return {"document_id": document_id, "send_email": send_email, "meta": request_metadata}


def test_the_payload_model_uses_camel_case_and_fills_defaults() -> None:
    assert {
        "documentId": 73,
        "sendEmail": True,
        "isResealing": False,
        "requestMetadata": None,
    } == seal.validate({"documentId": 73})


def test_snake_case_names_are_accepted_too_and_unknown_keys_dropped() -> None:
    assert 73 == seal.validate({"document_id": 73, "colour": "red"})["documentId"]


def test_a_bad_field_is_named_in_camel_case() -> None:
    with pytest.raises(PayloadError) as raised:
        seal.validate({"documentId": "seventy-three"})
    assert "documentId" == raised.value.field
    assert str(raised.value).startswith("unit.seal: documentId: ")
    assert "'seventy-three'" in str(raised.value)


def test_a_missing_field_is_named() -> None:
    with pytest.raises(PayloadError, match=r"^unit.seal: documentId: Field required$"):
        seal.validate({})


def test_a_nested_field_is_named_by_its_path() -> None:
    with pytest.raises(PayloadError) as raised:
        seal.validate({"documentId": 1, "requestMetadata": {"ipAddress": "not an ip"}})
    assert "requestMetadata.ipAddress" == raised.value.field


def test_a_payload_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(PayloadError, match="must be a JSON object"):
        seal.validate([1, 2])  # type: ignore[arg-type]


def test_many_payloads_name_the_index_of_the_bad_one() -> None:
    with pytest.raises(PayloadError, match=r"^unit.seal: payload 2: documentId: "):
        seal.validate_many([{"documentId": 1}, {"documentId": 2}, {"documentId": "x"}])


def test_calling_the_actor_passes_parsed_values_by_python_name() -> None:
    result = seal(documentId=5, requestMetadata={"ipAddress": "10.0.0.1"})  # type: ignore[call-arg]
    assert 5 == result["document_id"]
    assert isinstance(result["meta"], RequestMetadata)


def test_positional_payloads_are_refused() -> None:
    with pytest.raises(PayloadError, match="keyword arguments"):
        seal.message_with_options(args=(73,))


def test_functions_with_star_kwargs_cannot_be_actors() -> None:
    with pytest.raises(TypeError, match="must be named"):

        @docjobs.actor("unit.bad")
        def bad(**payload: object) -> None: ...


def test_a_job_id_is_declared_once() -> None:
    with pytest.raises(ValueError, match="already declared"):

        @docjobs.actor("unit.seal")
        def again(*, document_id: int) -> None: ...


def test_the_registry_finds_actors_by_job_id() -> None:
    assert seal is registry.get("unit.seal")
    with pytest.raises(docjobs.ActorNotFound):
        registry.get("unit.nope")
