"""One error hierarchy for the whole package.

Every error carries a stable ``code`` (what programs match on) and a message a person can act on.
Each interface maps these once: the HTTP layer to a status and JSON body, the CLI to an exit code.
"""

from __future__ import annotations


class FaceledgerError(Exception):
    """Base of every error faceledger raises on purpose."""

    code: str = "FACELEDGER_ERROR"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __reduce__(self) -> tuple:
        # Whole across processes (a Ray task's refusal arrives as what it was): subclasses'
        # constructors take other arguments, so the state is restored, not re-constructed.
        return _rebuilt, (type(self), self.message, dict(self.__dict__))


def _rebuilt(kind: type[FaceledgerError], message: str, state: dict) -> FaceledgerError:
    error = kind.__new__(kind)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class InvalidImageError(FaceledgerError):
    """The bytes are not an image we accept.

    ``code`` is one of EMPTY, UNSUPPORTED_FORMAT, TRUNCATED, TOO_LARGE, TOO_MANY_PIXELS, TOO_SMALL.
    """

    CODES = frozenset(
        {"EMPTY", "UNSUPPORTED_FORMAT", "TRUNCATED", "TOO_LARGE", "TOO_MANY_PIXELS", "TOO_SMALL"}
    )

    def __init__(self, code: str, message: str) -> None:
        if code not in self.CODES:
            raise ValueError(f"unknown image error code {code!r}")
        super().__init__(message, code=code)


class InvalidVideoError(FaceledgerError):
    """The file is not a video we accept.

    ``code`` is one of EMPTY, UNSUPPORTED_FORMAT, TRUNCATED, TOO_LARGE, TOO_LONG,
    TOO_MANY_PIXELS, TOO_SMALL.
    """

    CODES = frozenset(
        {
            "EMPTY",
            "UNSUPPORTED_FORMAT",
            "TRUNCATED",
            "TOO_LARGE",
            "TOO_LONG",
            "TOO_MANY_PIXELS",
            "TOO_SMALL",
        }
    )

    def __init__(self, code: str, message: str) -> None:
        if code not in self.CODES:
            raise ValueError(f"unknown video error code {code!r}")
        super().__init__(message, code=code)


class NoFaceDetected(FaceledgerError):
    code = "NO_FACE_DETECTED"


class ModelFileError(FaceledgerError):
    """A model file is missing, truncated or does not match its registered checksum."""

    code = "MODEL_FILE_ERROR"


class ConfigurationError(FaceledgerError):
    """A setting that cannot work (e.g. a database URL of an unsupported kind)."""

    code = "CONFIGURATION_ERROR"


class InvalidParameterError(FaceledgerError):
    code = "INVALID_PARAMETER"


class DatasetError(FaceledgerError):
    """Evaluation data is missing or malformed."""

    code = "DATASET_ERROR"


class InputNotFoundError(FaceledgerError):
    code = "NOT_FOUND"


class NotFoundError(FaceledgerError):
    """A named collection, face, user or key does not exist."""

    code = "RESOURCE_NOT_FOUND"


class AlreadyExistsError(FaceledgerError):
    code = "RESOURCE_ALREADY_EXISTS"


class AuthenticationError(FaceledgerError):
    """No credentials, or credentials we do not recognise."""

    code = "UNAUTHENTICATED"


class PermissionDeniedError(FaceledgerError):
    """Known credentials whose role does not allow the operation."""

    code = "PERMISSION_DENIED"


class PolicyViolation(PermissionDeniedError):
    """The key's use policy does not allow this request; the message says which rule."""

    code = "POLICY_VIOLATION"


class RuleViolation(FaceledgerError):
    """A request that breaks a governance rule on the state it meets (a reviewer's second
    decision on one candidate, a decision on a candidate already closed). The service records
    it on the ledger as a refusal before raising it."""

    code = "RULE_VIOLATION"


class LedgerError(FaceledgerError):
    code = "LEDGER_ERROR"


class InvalidPaginationToken(InvalidParameterError):
    code = "INVALID_PAGINATION_TOKEN"


class IdempotentParameterMismatch(FaceledgerError):
    """A client request token reused with a different request."""

    code = "IDEMPOTENT_PARAMETER_MISMATCH"


class RateLimited(FaceledgerError):
    code = "RATE_LIMITED"


class ServiceBusy(FaceledgerError):
    """Too much work in progress; the caller should retry after ``retry_after`` seconds."""

    code = "SERVICE_BUSY"

    def __init__(self, message: str, *, retry_after: int = 2) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class WorkersFailed(FaceledgerError):
    """A cluster lost a task beyond its retries, or went away."""

    code = "WORKERS_FAILED"


class RequestTooLarge(FaceledgerError):
    code = "REQUEST_TOO_LARGE"
