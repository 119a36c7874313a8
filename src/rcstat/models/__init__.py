"""Model plumbing: the embedded default model, loading by name or path, and the logit engine."""

from rcstat.models.embedded import DEFAULT_MODEL, prepare_default_model
from rcstat.models.loading import load_model

__all__ = ["DEFAULT_MODEL", "load_model", "prepare_default_model"]
