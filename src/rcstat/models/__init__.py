"""Model plumbing: the embedded default model, loading by name or path, and the logit engine."""

from rcstat.lazy import exports

__all__ = ["DEFAULT_MODEL", "load_model", "prepare_default_model"]
__getattr__, __dir__ = exports(
    __name__,
    {
        "DEFAULT_MODEL": "rcstat.models.embedded",
        "prepare_default_model": "rcstat.models.embedded",
        "load_model": "rcstat.models.loading",
    },
)
