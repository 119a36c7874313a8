"""The schemas of the files rcstat reads (pydantic models, strict: a number is not a string), and the
field types they share. Evaluation formats (KV samples, VeriGran, QuoteSum) define theirs beside
their readers from the same types."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StrictInt, StrictStr


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Text = Annotated[StrictStr, AfterValidator(_not_blank)]  # a string with something in it
Finite = Annotated[float, AfterValidator(_finite)]  # strict: a number (an int too), not a string


class Schema(BaseModel):
    """Strict types; other fields are allowed and ignored (published data carries more)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class Chunk(Schema):
    """One source of ``rcstat attribute --sources``: ``{"text": "…"}``."""

    text: Text


class Profile(Schema):
    """A head profile (``rcstat heads calibrate``): every head's mean expected RC."""

    model: StrictStr
    estimator: StrictStr
    head_rc: list[list[Finite]]
    examples: StrictInt
