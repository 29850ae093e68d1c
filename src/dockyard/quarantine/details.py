"""`quarantineDetails`: the JSON string a quarantine writer sends with a state, checked
against ACR's schema (Azure/acr `docs/preview/quarantine/quarantine-details/schema.json`):
an object of `scanner`, `state`, `link` (strings) and `result`, a scan summary of
`version`, at most five `summary` entries (`severity` one of Critical, High, Medium,
Low, None; an integer `count`) and a `description` of at most 1024 characters. Nothing
else at the top level; the summary's own objects are open, as the schema leaves them."""

from __future__ import annotations

from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from dockyard.common.errors import RequestInvalid

Severity = Literal["Critical", "High", "Medium", "Low", "None"]


class _SeverityCount(BaseModel):
    severity: Severity | None = None
    count: StrictInt | None = None


class _Summary(BaseModel):
    version: StrictStr
    summary: list[_SeverityCount] = Field(max_length=5)
    description: StrictStr | None = Field(default=None, max_length=1024)


class QuarantineDetails(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scanner: StrictStr | None = None
    state: StrictStr | None = None
    result: _Summary | None = None
    link: StrictStr | None = None


def check_details(text: object) -> str:
    """`text` if it is a JSON string of a quarantine details object, else `RequestInvalid`
    naming what is wrong (never echoing more than the path of the fault)."""
    if not isinstance(text, str):
        raise RequestInvalid("quarantineDetails must be a string holding a JSON object")
    try:
        QuarantineDetails.model_validate(orjson.loads(text))
    except orjson.JSONDecodeError:
        raise RequestInvalid("quarantineDetails is not valid JSON") from None
    except ValidationError as exc:
        faults = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'the value'}: {error['msg']}"
            for error in exc.errors()
        )
        raise RequestInvalid(f"quarantineDetails does not follow ACR's schema: {faults}") from None
    return text
