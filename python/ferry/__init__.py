"""ferry: run many command-line jobs on your machine or a cluster.

The seed's Python API over libferry (docs/python.md)::

    import ferry
    with ferry.Connection() as j:              # the local machine
        job_id = j.submit(["echo", "hello"])
        j.wait(job_id)
        print(j.status(job_id), j.stdoutReadLine(job_id))

Every method has the seed's name (``exitInformation``) and a snake_case
alias (``exit_information``). Errors are ``ferry.Error`` and its
subclasses, one per FERRY_E* code, carrying the engine's message.
"""
from ferry._ferry import (  # noqa: F401 (re-exported)
    __version__,
    JOB_STATES,
    EXIT_STATUSES,
    UNDETERMINED,
    QUEUED_ACTIVE,
    SYSTEM_ON_HOLD,
    USER_ON_HOLD,
    USER_SYSTEM_ON_HOLD,
    RUNNING,
    SYSTEM_SUSPENDED,
    USER_SUSPENDED,
    USER_SYSTEM_SUSPENDED,
    DONE,
    FAILED,
    FINISHED_REGULARLY,
    FINISHED_SIGNAL,
    FINISHED_UNCLEAR_CONDITION,
    KILLED_BY_USER,
    ABORTED,
    Error,
    InvalidArgument,
    OutOfMemory,
    NoSuchJob,
    ConnectFailed,
    ProtocolError,
    Timeout,
    InvalidState,
    Unsupported,
    ConfigurationError,
    IOFailure,
    TryAgain,
    EndOfOutput,
    PermissionDenied,
    Disconnected,
    ResourceError,
    InternalError,
    AuthenticationError,
)
from ferry import _ferry

# The seed's name -> the snake_case alias a Python user looks for.
_ALIASES = {
    "exitInformation": "exit_information",
    "stdoutReadLine": "stdout_read_line",
    "stderrReadLine": "stderr_read_line",
    "sendFile": "send_file",
    "registerFileTransfer": "register_file_transfer",
    "retrieveFile": "retrieve_file",
    "cancelTransfer": "cancel_transfer",
    "jobInformation": "job_information",
    "transferInformation": "transfer_information",
}


class Connection(_ferry.Connection):
    __doc__ = _ferry.Connection.__doc__
    __slots__ = ()


for _seed, _snake in _ALIASES.items():
    setattr(Connection, _snake, getattr(_ferry.Connection, _seed))
del _seed, _snake

__all__ = ["Connection"] + [n for n in dir(_ferry) if not n.startswith("_")
                            and n != "Connection"] + ["__version__"]
