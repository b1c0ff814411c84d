"""Typed errors for problems caused by the caller's input (not by bugs in asm).

Every error carries a short machine-readable ``code``, a suggested ``http_status`` and a
``title`` (a heading for the message), so a server can answer (:func:`asm.wire.error_answer`)::

    except AsmError as e:
        return e.http_status, e.to_dict()   # {"error": e.code, "message": str(e)}

and a client turns the answer back into the same typed error with :func:`from_dict`.

The messages are written for the person who sent the image or the option, not for a
developer reading a traceback.

Hierarchy::

    AsmError(Exception)                          code "asm_error"        400
    ├── InvalidImage(AsmError, ValueError)         code "invalid_image"  400
    │   ├── ImageTooLarge                          code "image_too_large" 413
    │   └── ImageTooSmall                          code "image_too_small" 422
    ├── InvalidOption(AsmError, ValueError)        code "invalid_option" 400
    ├── BadRequest(AsmError, ValueError)           code "bad_request"    400
    ├── InvalidModel(AsmError, ValueError)         code "invalid_model"  500
    └── ModelNotFound(AsmError, FileNotFoundError) code "model_not_found" 500

Every subclass is also the builtin error code that already catches it expects
(``ValueError``, ``FileNotFoundError``). Messages that quote what the user sent go
through :func:`echo`, so a 100 KB option never comes back as a 100 KB message.
"""

from __future__ import annotations

import reprlib
from typing import Any

__all__ = [
    "AsmError", "InvalidImage", "ImageTooLarge", "ImageTooSmall", "InvalidOption", "BadRequest",
    "InvalidModel", "ModelNotFound", "echo", "describe", "from_dict", "ECHO_LIMIT",
]

#: At most this many characters of the user's input are quoted back in a message.
ECHO_LIMIT = 100
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = ECHO_LIMIT
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6


def echo(value: object, limit: int = ECHO_LIMIT) -> str:
    """``repr(value)`` in at most ``limit`` characters (``...`` marks a cut), cheap for huge input."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(error: BaseException) -> dict[str, str]:
    """``{"error": code, "message": text}`` for any error met while cropping one image.

    asm's own errors keep their code; an ``OSError`` (writing a file) is ``io_error``; anything
    else is ``internal_error`` with the exception's type and a capped message.
    """
    if isinstance(error, AsmError):
        return {"error": error.code, "message": str(error)}
    if isinstance(error, OSError):
        return {"error": "io_error", "message": error.strerror or str(error)}
    return {"error": "internal_error", "message": f"internal error ({type(error).__name__}: {echo(str(error))})"}


def from_dict(body: object) -> AsmError | None:
    """The typed error an answer ``{"error": code, "message": text}`` stands for (the inverse
    of :meth:`AsmError.to_dict`, for clients), or None for a code that is not asm's own."""
    if not isinstance(body, dict):
        return None
    cls = _BY_CODE.get(body.get("error"))  # type: ignore[arg-type]
    return cls(str(body.get("message", ""))) if cls is not None else None


class AsmError(Exception):
    """Base class of every error asm raises on purpose for bad input.

    Args:
        message: a sentence a user understands (``str(error)`` returns it).
        **details: optional machine-readable extras (e.g. ``width=...``), kept in
            ``error.details``; not part of :meth:`to_dict` unless asked for.
    """

    code: str = "asm_error"
    http_status: int = 400
    title: str = "Cannot crop this"  # a heading for the message (the demo's error pop-up)

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def __str__(self) -> str:
        return self.message

    def to_dict(self, with_details: bool = False) -> dict[str, Any]:
        """``{"error": code, "message": message}`` (plus ``"details"`` if asked), JSON-ready."""
        out: dict[str, Any] = {"error": self.code, "message": self.message}
        if with_details and self.details:
            out["details"] = dict(self.details)
        return out

    def __reduce__(self):  # keep code/details through pickling (multiprocessing workers)
        return (_rebuild, (type(self), self.message, self.details))


def _rebuild(cls: type[AsmError], message: str, details: dict[str, Any]) -> AsmError:
    return cls(message, **details)


class InvalidImage(AsmError, ValueError):
    """The input is not an image we can read (empty, corrupt, truncated, unsupported...)."""

    code = "invalid_image"
    http_status = 400
    title = "Not a usable image"


class ImageTooLarge(InvalidImage):
    """The image has more pixels than allowed (checked from the header, before decoding)."""

    code = "image_too_large"
    http_status = 413
    title = "Image too large"


class ImageTooSmall(InvalidImage):
    """A side of the image is shorter than the minimum."""

    code = "image_too_small"
    http_status = 422
    title = "Image too small"


class InvalidOption(AsmError, ValueError):
    """An option / argument value is out of range or of the wrong kind."""

    code = "invalid_option"
    http_status = 400
    title = "Invalid option"


class BadRequest(AsmError, ValueError):
    """A request that cannot even be read (no image, broken JSON or base64, a text body)."""

    code = "bad_request"
    http_status = 400
    title = "Bad request"


class InvalidModel(AsmError, ValueError):
    """A model file that is not an asm model (or cannot be read)."""

    code = "invalid_model"
    http_status = 500
    title = "Invalid model file"


class ModelNotFound(AsmError, FileNotFoundError):
    """No model file where one was asked for."""

    code = "model_not_found"
    http_status = 500
    title = "No model file"


#: Every error type by its code (for :func:`from_dict`).
_BY_CODE: dict[str, type[AsmError]] = {cls.code: cls for cls in (
    AsmError, InvalidImage, ImageTooLarge, ImageTooSmall, InvalidOption, BadRequest, InvalidModel, ModelNotFound)}
