"""One explicit registry of pipelines, by name."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from dw_analytics.core.exceptions import DWError

if TYPE_CHECKING:
    from dw_analytics.core.pipeline import BasePipeline

P = TypeVar("P", bound="type[BasePipeline]")

_REGISTRY: dict[str, type[BasePipeline]] = {}


class UnknownPipeline(DWError, KeyError):
    """No pipeline is registered under that name; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.message


def register(cls: P) -> P:
    """Class decorator: make a pipeline runnable by its ``name``.

    Example:
        >>> from dw_analytics.core.pipeline import BasePipeline
        >>> @register
        ... class Hello(BasePipeline):
        ...     name = "hello_doc"
        >>> get_pipeline("hello_doc") is Hello
        True
    """
    name = getattr(cls, "name", "")
    if not name:
        raise ValueError(f"{cls.__qualname__} needs a non-empty class attribute 'name' to be registered")
    existing = _REGISTRY.get(name)
    if existing is not None and existing.__qualname__ != cls.__qualname__:
        raise ValueError(
            f"pipeline name {name!r} is already registered by {existing.__module__}.{existing.__qualname__}"
        )
    _REGISTRY[name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove a pipeline (tests, notebooks redefining a prototype)."""
    _REGISTRY.pop(name, None)


def get_pipeline(name: str) -> type[BasePipeline]:
    """The pipeline class registered as ``name``.

    Raises:
        UnknownPipeline: naming the registered pipelines.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        valid = ", ".join(sorted(_REGISTRY)) or "(none registered)"
        raise UnknownPipeline(f"unknown pipeline {name!r}; valid pipelines: {valid}", pipeline=name) from None


def all_pipelines() -> dict[str, type[BasePipeline]]:
    """Registered pipelines by name, sorted."""
    return dict(sorted(_REGISTRY.items()))
