"""One error tree; each class's docstring is its default message."""

from __future__ import annotations


class TracemillError(Exception):
    """Tracemill failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0])


class JobNotFound(TracemillError):
    """No job has that id."""


class SampleNotFound(TracemillError):
    """That job has no sample with that id."""


class ExportNotFound(TracemillError):
    """No export has that id."""


class InvalidJob(TracemillError):
    """The job cannot be accepted as given."""

    def __init__(self, message: str | None = None, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class Forbidden(TracemillError):
    """This token may not do that."""


class JobStateConflict(TracemillError):
    """The job is not in a state that allows this action."""


class LeaseLost(TracemillError):
    """Another worker holds this task now; nothing may be written for it."""


class TeacherError(TracemillError):
    """The teacher did not produce completions."""


class TeacherUnavailable(TeacherError):
    """The teacher is unreachable or overloaded; the request may succeed later."""


class TeacherRejected(TeacherError):
    """The teacher refused the request itself; retrying the same request cannot help."""

    def __init__(self, message: str | None = None, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status it answered with, where it answered


class TeacherNotInstalled(TeacherError):
    """This worker lacks what the job's kind of teacher needs; another worker may have it."""


class ShardWriteError(TracemillError):
    """A shard could not be written and recorded."""


class UnknownVerifier(TracemillError):
    """No verifier is registered under that name."""
