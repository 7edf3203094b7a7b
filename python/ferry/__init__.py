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
    WaitAllResult,
    ControlResult,
)
from ferry import _ferry
import datetime as _datetime
import json as _json

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

    def submit_workflow(self, workflow):
        """Submits a workflow (docs/workflows.md): a dict of the workflow file's
        form, or its JSON text, in one request and one transaction; returns its
        id once committed. Raises InvalidArgument naming what is wrong (nothing
        is submitted then), TypeError for what is not JSON."""
        if not isinstance(workflow, (str, bytes)):
            workflow = _json.dumps(workflow, ensure_ascii=False)
        return _ferry.Connection.submit_workflow(self, workflow)

    def list_jobs(self, state=None, *, after=0, since=None, limit=None, detail=False,
                  page=1000, workflow=None):
        """Iterates over the jobs of the resource, oldest (lowest id) first: their
        ids, or with detail=True dicts of every field of `ferry info --json`.

        state: a state name or a list of them; after: only ids above it;
        since: only jobs submitted at or after it (seconds since the epoch or a
        datetime); limit: at most this many; workflow: only its jobs. The jobs
        come a page (page jobs, 1 to 10000) per request as the iteration goes,
        so a listing of a million jobs holds one page; each job that exists throughout is listed
        once, jobs submitted meanwhile may be. The first page is asked for at
        the call: a bad argument raises there (InvalidArgument, TypeError).
        """
        if isinstance(since, _datetime.datetime):
            since = since.timestamp()
        since = 0.0 if since is None else since
        if limit is not None and limit < 0:
            raise InvalidArgument(f"limit must be >= 0, not {limit}")
        if not isinstance(page, int) or isinstance(page, bool) or not 1 <= page <= 10000:
            raise InvalidArgument(f"page must be 1 to 10000 jobs, not {page!r}")
        if workflow is not None and (not isinstance(workflow, int) or
                                     isinstance(workflow, bool) or workflow < 1):
            raise InvalidArgument(f"workflow must be a workflow id, not {workflow!r}")

        def ask(after, left):
            n = page if left is None else min(page, left)
            return (self._list_page(state, after, since, n, detail, workflow or 0)
                    if n else ([], after))

        return _pages(ask, ask(after, limit), limit, page)


def _pages(ask, first, left, page):
    """The items of the pages ask(after, left) gives, first (already asked) first."""
    items, last = first
    while True:
        yield from items
        if left is not None:
            left -= len(items)
        if len(items) < page or left == 0:
            return
        items, last = ask(last, left)


for _seed, _snake in _ALIASES.items():
    setattr(Connection, _snake, getattr(_ferry.Connection, _seed))
del _seed, _snake

__all__ = ["Connection"] + [n for n in dir(_ferry) if not n.startswith("_")
                            and n != "Connection"] + ["__version__"]
