"""soma-workflow's client API over ferry (docs/workflows.md, "From Python:
ferry.soma_workflow").

A script written for soma-workflow's client runs after changing its import
line to ``from ferry.soma_workflow import ...``::

    from ferry.soma_workflow import Job, Workflow, WorkflowController, Helper
    a, b = Job(["sh", "-c", "echo a"]), Job(["sh", "-c", "echo b"])
    wf = Workflow(jobs=[a, b], dependencies=[(a, b)], name="two")
    ctrl = WorkflowController()                  # the local machine
    wf_id = ctrl.submit_workflow(wf)
    Helper.wait_workflow(wf_id, ctrl)
    print(ctrl.workflow_status(wf_id))           # "workflow_done"

The Workflow is turned into one workflow file (docs/workflows.md) and
submitted in one request: the engine runs the graph, the client may go.
Statuses, exit statuses and the shapes of the answers are soma-workflow's:
a job that exits 1 is ``done`` with exit value 1, a job whose ancestor
failed is ``failed``/``aborted_before_running``, a workflow whose jobs all
ended is ``workflow_done``. A SharedResourcePath is translated on the
resource at submission, through the translation files its ferry.conf
section names (path_translation_files, soma-workflow's
PATH_TRANSLATION_FILES). What ferry cannot honour (a soma-workflow
Configuration object, dynamic outputs...) raises ``Unsupported`` naming it
when it is used, never silently ignored.
"""
import datetime as _dt
import time as _time
import json as _json
import math as _math
import os as _os
import posixpath as _posixpath
import re as _re
import shutil as _shutil
import socket as _socket
import tempfile as _tempfile
import configparser as _configparser

import ferry as _ferry
from ferry import Unsupported, InvalidArgument, NoSuchJob  # noqa: F401 (re-exported)

__all__ = ["Job", "BarrierJob", "Workflow", "Group", "FileTransfer", "SharedResourcePath",
           "TemporaryPath", "SpecialPath", "WorkflowController", "Helper", "constants",
           "SerializationError", "Unsupported"]


class _Constants:
    """soma_workflow.constants: the names and their string values, as soma's."""
    NOT_SUBMITTED = "not_submitted"
    UNDETERMINED = "undetermined"
    QUEUED_ACTIVE = "queued_active"
    SYSTEM_ON_HOLD = "system_on_hold"
    USER_ON_HOLD = "user_on_hold"
    USER_SYSTEM_ON_HOLD = "user_system_on_hold"
    RUNNING = "running"
    SYSTEM_SUSPENDED = "system_suspended"
    USER_SUSPENDED = "user_suspended"
    USER_SYSTEM_SUSPENDED = "user_system_suspended"
    DONE = "done"
    FAILED = "failed"
    DELETE_PENDING = "delete_pending"
    KILL_PENDING = "kill_pending"
    SUBMISSION_PENDING = "submission_pending"
    WARNING = "warning"
    JOB_STATUS = [NOT_SUBMITTED, UNDETERMINED, QUEUED_ACTIVE, SYSTEM_ON_HOLD, USER_ON_HOLD,
                  USER_SYSTEM_ON_HOLD, RUNNING, SYSTEM_SUSPENDED, USER_SUSPENDED,
                  USER_SYSTEM_SUSPENDED, DONE, FAILED, DELETE_PENDING, KILL_PENDING,
                  SUBMISSION_PENDING, WARNING]

    EXIT_UNDETERMINED = "exit_status_undetermined"
    EXIT_ABORTED = "aborted"
    EXIT_NOTRUN = "aborted_before_running"
    FINISHED_REGULARLY = "finished_regularly"
    FINISHED_TERM_SIG = "finished_signal"
    FINISHED_UNCLEAR_CONDITIONS = "finished_unclear_condition"
    USER_KILLED = "killed_by_user"
    JOB_EXIT_STATUS = [EXIT_UNDETERMINED, EXIT_ABORTED, FINISHED_REGULARLY, FINISHED_TERM_SIG,
                       FINISHED_UNCLEAR_CONDITIONS, USER_KILLED, EXIT_NOTRUN]

    FILES_DO_NOT_EXIST = "do not exist"
    FILES_ON_CLIENT = "on client side"
    FILES_ON_CR = "on computing resource side"
    FILES_ON_CLIENT_AND_CR = "on both sides"
    TRANSFERING_FROM_CLIENT_TO_CR = "transfering client->cr"
    TRANSFERING_FROM_CR_TO_CLIENT = "transfering cr->client"
    FILES_UNDER_EDITION = "under edition"
    FILE_TRANSFER_STATUS = [FILES_DO_NOT_EXIST, FILES_ON_CLIENT, FILES_ON_CR,
                            FILES_ON_CLIENT_AND_CR, TRANSFERING_FROM_CLIENT_TO_CR,
                            TRANSFERING_FROM_CR_TO_CLIENT, FILES_UNDER_EDITION]

    TR_FILE_C_TO_CR = "file transfer form client to cr"
    TR_DIR_C_TO_CR = "dir transfer from client to cr"
    TR_MFF_C_TO_CR = "multi file format from client to cr"
    TR_FILE_CR_TO_C = "file transfer form cr to client"
    TR_DIR_CR_TO_C = "dir transfer from cr to client"
    TR_MFF_CR_TO_C = "multi file format from cr to client"
    TRANSFER_TYPES = [TR_FILE_C_TO_CR, TR_DIR_C_TO_CR, TR_MFF_C_TO_CR, TR_FILE_CR_TO_C,
                      TR_DIR_CR_TO_C, TR_MFF_CR_TO_C]

    WORKFLOW_NOT_STARTED = "worklflow_not_started"  # sic: soma-workflow's spelling
    WORKFLOW_IN_PROGRESS = "workflow_in_progress"
    WORKFLOW_DONE = "workflow_done"
    WORKFLOW_STATUS = [WORKFLOW_NOT_STARTED, WORKFLOW_IN_PROGRESS, WORKFLOW_DONE,
                       DELETE_PENDING, WARNING]


constants = _Constants
C = _Constants


class SerializationError(Exception):
    """Helper.serialize()/unserialize() failed (soma_workflow.errors's name)."""


def _unsupported(what, why):
    raise Unsupported(f"ferry.soma_workflow: {what} is not supported: {why}")


# ------------------------------------------------------------ workflow elements


class Job:
    """soma-workflow's Job: a command with its files and options."""

    def __init__(self, command, referenced_input_files=None, referenced_output_files=None,
                 stdin=None, join_stderrout=False, disposal_timeout=168, name=None,
                 stdout_file=None, stderr_file=None, working_directory=None,
                 parallel_job_info=None, priority=0, native_specification=None,
                 user_storage=None, env=None, param_dict=None, use_input_params_file=False,
                 has_outputs=False, input_params_file=None, output_params_file=None,
                 configuration=None):
        self.name = command[0] if not name and len(command) else name
        self.command = command
        self.referenced_input_files = referenced_input_files or []
        self.referenced_output_files = referenced_output_files or []
        self.stdin = stdin
        self.join_stderrout = join_stderrout
        self.disposal_timeout = disposal_timeout
        self.stdout_file = stdout_file
        self.stderr_file = stderr_file
        self.working_directory = working_directory
        self.parallel_job_info = parallel_job_info
        self.priority = priority
        self.native_specification = native_specification
        self.user_storage = user_storage  # soma-workflow ignores it too
        self.env = env
        self.param_dict = param_dict or {}
        self.use_input_params_file = use_input_params_file
        self.has_outputs = has_outputs
        self.input_params_file = input_params_file
        self.output_params_file = output_params_file
        self.configuration = configuration or {}
        self.job_id = None  # set on the Jobs of WorkflowController.workflow()

    def get_commandline(self):
        """The command with param_dict's %(name)s substitutions made."""
        return _substitute(self.command, self.param_dict)

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"


class BarrierJob(Job):
    """A job with no command: a hub for many-to-many dependencies."""

    def __init__(self, command=(), referenced_input_files=None, referenced_output_files=None,
                 name=None):
        super().__init__(command=[], referenced_input_files=referenced_input_files,
                         referenced_output_files=referenced_output_files, name=name)


class Group:
    """A named set of jobs and groups, for display."""

    def __init__(self, elements, name, user_storage=None):
        self.elements = elements
        self.name = name
        self.user_storage = user_storage

    def __repr__(self):
        return f"<Group {self.name!r}>"


class Workflow:
    """soma-workflow's Workflow: jobs, dependencies (pairs of Jobs or Groups)
    and a root group. Dependencies on groups become two barrier jobs per
    group, as soma-workflow makes them (so the jobs listed include them)."""

    def __init__(self, jobs, dependencies=None, root_group=None, disposal_timeout=168,
                 user_storage=None, name=None, env=None, env_builder_code=None,
                 param_links=None):
        self.name = name
        self.jobs = list(jobs)
        self.dependencies = list(dependencies) if dependencies is not None else []
        self.disposal_timeout = disposal_timeout
        self.user_storage = user_storage
        self.env = env if env is not None else {}
        self.env_builder_code = env_builder_code
        self.param_links = param_links or {}
        if root_group:
            self.root_group = list(root_group.elements if isinstance(root_group, Group)
                                   else root_group)
        else:
            self.root_group = None
        self.groups = []
        todo = [e for e in (self.root_group or []) if isinstance(e, Group)]
        while todo:
            g = todo.pop()
            self.groups.append(g)
            todo += [e for e in g.elements if isinstance(e, Group)]
        self._convert_group_dependencies()
        if self.root_group is None:
            self.root_group = self.jobs

    def _hubs(self, group, hubs):
        """The (input, output) barrier pair standing for group, made once."""
        if group not in hubs:
            hubs[group] = (BarrierJob(name=f"{group.name}_input"),
                           BarrierJob(name=f"{group.name}_output"))
            self.jobs += hubs[group]
            for e in group.elements:  # nested groups get theirs: the pairs chain
                if isinstance(e, Group):
                    self._hubs(e, hubs)
        return hubs[group]

    def _convert_group_dependencies(self):
        hubs, kept = {}, []
        for a, b in self.dependencies:
            if isinstance(a, Group):
                a = self._hubs(a, hubs)[1]
            if isinstance(b, Group):
                b = self._hubs(b, hubs)[0]
            kept.append((a, b))
        for g, (i, o) in list(hubs.items()):
            for e in g.elements:
                ei, eo = self._hubs(e, hubs) if isinstance(e, Group) else (e, e)
                kept += [(i, ei), (eo, o)]
        self.dependencies = kept

    def add_dependencies(self, dependencies):
        self.dependencies += list(dependencies)
        self._convert_group_dependencies()

    def add_workflow(self, workflow, as_group=None):
        self.jobs += workflow.jobs
        self.dependencies += workflow.dependencies
        group = None
        if as_group:
            group = Group(workflow.root_group, name=as_group)
            self.root_group.append(group)
            self.groups += [group] + workflow.groups
        else:
            self.root_group += workflow.root_group
            self.groups += workflow.groups
        self.env.update(workflow.env)
        return group

    def __repr__(self):
        return f"<Workflow {self.name!r}: {len(self.jobs)} jobs>"


class SpecialPath:
    """A path the layer replaces before the job runs; `path + ".ext"` makes a
    derived one (soma-workflow's pattern)."""

    def __init__(self, path=None):
        if isinstance(path, SpecialPath):
            self.pattern, self.ref = path.pattern, path.referent()
        else:
            self.pattern, self.ref = "%s", None

    def referent(self):
        return self.ref if self.ref is not None else self

    def __getattr__(self, attr):  # a derived path reads its referent's fields
        ref = self.__dict__.get("ref")
        if ref is None:
            raise AttributeError(attr)
        return getattr(ref, attr)


    def __add__(self, other):
        res = type(self)(self)
        res.pattern = self.pattern + str(other)
        return res

    def __radd__(self, other):
        res = type(self)(self)
        res.pattern = str(other) + self.pattern
        return res

    def __hash__(self):
        r = self.referent()
        return object.__hash__(r) if r is self else hash(r)

    def __eq__(self, other):
        return isinstance(other, type(self)) and self.referent() is other.referent()


class FileTransfer(SpecialPath):
    """A file, directory or set of files (client_paths: an .img and its .hdr)
    a job reads (is_input) or writes."""

    def __init__(self, is_input, client_path=None, disposal_timeout=168, name=None,
                 client_paths=None):
        if isinstance(is_input, FileTransfer):
            super().__init__(is_input)
            return
        if client_path is None:
            raise TypeError("FileTransfer() needs a client_path")
        super().__init__()
        self.is_input = bool(is_input)
        self.client_path = client_path
        self.client_paths = client_paths
        self.disposal_timeout = disposal_timeout
        self.name = name or client_path + "transfer"
        self.initial_status = C.FILES_ON_CLIENT if is_input else C.FILES_DO_NOT_EXIST

    def __str__(self):
        return self.pattern % self.referent().client_path

    def __repr__(self):
        return repr(str(self))


class SharedResourcePath(SpecialPath):
    """A path named by (namespace, uuid, relative_path), translated on the
    resource when the workflow is submitted: the translation of uuid in the
    file the resource's path_translation_files names for namespace (read by
    its engine, on its host), joined with relative_path."""

    def __init__(self, relative_path, namespace=None, uuid=None, disposal_timeout=168):
        if isinstance(relative_path, SharedResourcePath):
            super().__init__(relative_path)
            return
        if namespace is None or uuid is None:
            raise TypeError("SharedResourcePath() needs relative_path, namespace and uuid")
        super().__init__()
        self.relative_path, self.namespace, self.uuid = relative_path, namespace, uuid
        self.disposal_timeout = disposal_timeout

    def __str__(self):
        r = self.referent()
        return self.pattern % f"{r.namespace}:{r.uuid}:{r.relative_path}"

    def __repr__(self):
        return f"<SharedResourcePath {str(self)!r}>"


class TemporaryPath(SpecialPath):
    """A file (or directory) made on the resource for the workflow: a place in
    ferry's transfer area, gone with its disposal timeout."""

    def __init__(self, is_directory=False, disposal_timeout=168, name=None, suffix=""):
        if isinstance(is_directory, TemporaryPath):
            super().__init__(is_directory)
            return
        super().__init__()
        self.is_directory = is_directory
        self.disposal_timeout = disposal_timeout
        self.name = "temporary" if name is None else name
        self.suffix = suffix

    def __str__(self):
        return self.pattern % self.referent().name

    def __repr__(self):
        return f"<TemporaryPath {str(self)!r}>"


def _substitute(command, params):
    """soma-workflow's %(name)s substitution of param_dict values into command."""
    if not params:
        return command
    out = []
    for e in command:
        if isinstance(e, (list, tuple)) and not _is_ft_tuple(e):
            out.append(_substitute(e, params))
        elif isinstance(e, str) and "%(" in e:
            m = _re.fullmatch(r"%\((.+)\)[dsf]", e)
            if m and m.group(1) in params:  # the value itself: it may be a path object
                out.append(params[m.group(1)])
                continue
            try:
                out.append(e % params)
            except (KeyError, ValueError, TypeError):
                out.append(e)
        else:
            out.append(e)
    return out


def _is_ft_tuple(e):
    return isinstance(e, tuple) and len(e) == 2 and isinstance(e[0], SpecialPath)


# ------------------------------------------------------------ Workflow -> workflow file


def _hours(td_hours, what):
    if isinstance(td_hours, bool) or not isinstance(td_hours, (int, float)) or td_hours <= 0:
        raise InvalidArgument(f"{what} must be a number of hours > 0, not {td_hours!r}")
    return max(1, int(_math.ceil(td_hours)))


class _Builder:
    """Turns a Workflow into the dict of a workflow file (docs/workflows.md).
    check() refuses what cannot be honoured before anything is sent or
    registered; place() then makes the FileTransfers' and TemporaryPaths'
    places on the resource; spec() writes the file."""

    def __init__(self, ctrl, workflow, expiration_date, name, queue):
        self.ctrl, self.wf, self.queue = ctrl, workflow, queue
        self.name = name if name is not None else workflow.name
        self.hours = None
        if expiration_date is not None:
            if not isinstance(expiration_date, _dt.datetime):
                raise InvalidArgument("expiration_date must be a datetime.datetime")
            left = (expiration_date - _dt.datetime.now(expiration_date.tzinfo)).total_seconds()
            self.hours = _hours(left / 3600, "expiration_date - now")
        self.ids = {}     # Job -> local id
        self.places = {}  # referent SpecialPath -> its (main) path on the resource
        self.dirs = {}    # referent FileTransfer of several files -> their directory there
        self.tids = {}    # referent -> the server path of its ferry transfer
        self.mkdirs = {}  # referent -> a directory its writers must make (several outputs)
        self.made = []    # server paths of the transfers made (cancelled on failure)
        self.records = []  # (transfer id, referent, kind) for elements_status

    # -- what ferry cannot honour, before anything is done
    def check(self):
        wf = self.wf
        if wf.env_builder_code:
            _unsupported("Workflow(env_builder_code=...)", "ferry runs no code in the engine")
        if wf.param_links:
            _unsupported("Workflow(param_links=...)",
                         "ferry has no job outputs to link (soma-workflow 3.1's dynamic outputs)")
        if not isinstance(wf.env or {}, dict):
            raise InvalidArgument("Workflow.env must be a dict of str -> str")
        for i, job in enumerate(wf.jobs):
            if not isinstance(job, Job):
                raise InvalidArgument(f"Workflow.jobs[{i}] is a {type(job).__name__}, not a Job")
            if job in self.ids:
                raise InvalidArgument(f"Workflow.jobs[{i}] ({job.name!r}) is given twice")
            self.ids[job] = str(i)
            self._check_job(job, i)
        for k, dep in enumerate(wf.dependencies):
            if len(dep) != 2 or any(d not in self.ids for d in dep):
                raise InvalidArgument(f"dependency {k}: {dep!r} names a job not in Workflow.jobs")

    def _check_job(self, job, i):
        what = f"job {i} ({job.name!r})"
        if job.priority:
            _unsupported(f"{what}: priority={job.priority!r}", "ferry has no job priority")
        for attr in ("use_input_params_file", "has_outputs", "input_params_file",
                     "output_params_file"):
            if getattr(job, attr):
                _unsupported(f"{what}: {attr}", "ferry has no job parameter files")
        if job.configuration:
            _unsupported(f"{what}: configuration", "ferry has no per-job configuration")
        if not isinstance(job, BarrierJob) and not job.command:
            raise InvalidArgument(f"{what}: the command is empty")
        self._parallel(job, what)
        for p in self._specials(job):
            ref = p.referent()
            if isinstance(ref, FileTransfer) and ref.client_paths and \
                    ref.client_path not in ref.client_paths:
                raise InvalidArgument(f"{what}: FileTransfer {ref.client_path!r}: its "
                                      "client_path must be one of its client_paths")

    @staticmethod
    def _parallel(job, what):
        """parallel_job_info as ferry's spec keys. 'native' and 'OpenMP': cpus
        on one node; 'MPI': nodes_number x cpu_per_node tasks on
        nodes_number nodes, the command starting its ranks itself (as
        under soma-workflow, whose MPI configuration only allocates)."""
        info = job.parallel_job_info
        if not info:
            return {}
        if isinstance(info, (tuple, list)):  # soma-workflow 2's (config_name, cpus)
            info = {"config_name": info[0], "cpu_per_node": info[1]}
        cfg = str(info.get("config_name", "native")).lower()
        nodes, per_node = int(info.get("nodes_number", 1)), int(info.get("cpu_per_node", 1))
        if cfg == "mpi":
            return {"tasks": nodes * per_node, "nodes": nodes}
        if nodes != 1 or cfg not in ("native", "openmp"):
            _unsupported(f"{what}: parallel_job_info {job.parallel_job_info!r}",
                         "ferry runs a 'native' or 'OpenMP' job on one node (nodes_number "
                         "1); several nodes need config_name 'MPI'")
        return {"cpus": per_node}

    def _specials(self, job):
        """Every SpecialPath a job names, wherever it is."""
        found = []

        def walk(e):
            if isinstance(e, SpecialPath):
                found.append(e)
            elif isinstance(e, (list, tuple)):
                for x in e:
                    walk(x)
            elif isinstance(e, dict):
                for x in e.values():
                    walk(x)
        for e in (job.command, job.referenced_input_files, job.referenced_output_files,
                  job.stdin, job.stdout_file, job.stderr_file, job.working_directory,
                  job.param_dict):
            walk(e)
        return found

    # -- the places of the shared paths, transfers and temporary paths on the resource
    def place(self):
        conn, remote = self.ctrl._conn, self.ctrl._remote
        self._translate(conn)  # first: a bad one fails before any file is sent
        for job in self.wf.jobs:
            for p in self._specials(job):
                ref = p.referent()
                if ref in self.places:
                    continue
                if isinstance(ref, FileTransfer):
                    self.places[ref] = self._transfer(conn, remote, ref)
                else:
                    self.places[ref] = self._temporary(conn, ref)

    def _translate(self, conn):
        """Each SharedResourcePath's place: the engine reads the translation files
        on the resource, once per (namespace, uuid) of the submission."""
        done = {}
        for i, job in enumerate(self.wf.jobs):
            for p in self._specials(job):
                ref = p.referent()
                if not isinstance(ref, SharedResourcePath) or ref in self.places:
                    continue
                key = (ref.namespace, ref.uuid)
                if key not in done:
                    try:
                        done[key] = conn.translate_path(*key)
                    except (_ferry.InvalidArgument, _ferry.IOFailure) as e:
                        raise type(e)(f"job {i} ({job.name!r}): SharedResourcePath "
                                      f"{str(ref)!r}: {e}") from None
                self.places[ref] = _posixpath.join(done[key], ref.relative_path)

    def _transfer(self, conn, remote, ft):
        hours = self.hours or _hours(ft.disposal_timeout, "FileTransfer.disposal_timeout")
        main = _os.path.basename(ft.client_path)
        if not remote:  # one file system: soma-workflow's local mode uses the path as is
            self.records.append((ft.client_path, ft, "local"))
            if ft.client_paths:
                self.dirs[ft] = _os.path.dirname(ft.client_path)
            return ft.client_path
        if ft.is_input:
            # several files are sent side by side; the server path is the first's
            paths = ([ft.client_path] + [p for p in ft.client_paths if p != ft.client_path]
                     if ft.client_paths else ft.client_path)
            sp = conn.sendFile(paths, hours)
            kind, path = "send", sp
            if ft.client_paths:
                self.dirs[ft] = _os.path.dirname(sp)
        elif ft.client_paths:
            # several outputs (an .img and its .hdr): one registered directory, made by
            # the jobs writing them, retrieved whole and its files put at their paths
            sp = conn.registerFileTransfer(_os.path.abspath(ft.client_path) + ".parts", hours)
            kind, path = "register_files", _os.path.join(sp, main)
            self.dirs[ft] = self.mkdirs[ft] = sp
        else:
            sp = conn.registerFileTransfer(_os.path.abspath(ft.client_path), hours)
            kind, path = "register", sp
        self.made.append(sp)
        self.tids[ft] = sp
        self.records.append((sp, ft, kind))
        return path

    def _temporary(self, conn, tmp):
        hours = self.hours or _hours(tmp.disposal_timeout, "TemporaryPath.disposal_timeout")
        # a registered output gives a fresh directory in the resource's transfer area,
        # removed with the transfer when its disposal timeout passes
        local = _os.path.join(_tempfile.gettempdir(), "ferry-soma-temporary",
                              (tmp.name or "temporary") + (tmp.suffix or ""))
        sp = conn.registerFileTransfer(local, hours)
        self.made.append(sp)
        self.tids[tmp] = sp
        path = _os.path.dirname(sp) if tmp.is_directory else sp
        self.records.append((path, tmp, "temporary"))
        return path

    def cancel(self):
        for sp in self.made:
            try:
                self.ctrl._conn.cancelTransfer(sp, force=True)
            except _ferry.Error:
                pass  # gone already: the point is that nothing stays

    # -- the workflow file
    def _path(self, e):
        if isinstance(e, SpecialPath):
            return e.pattern % self.places[e.referent()]
        if _is_ft_tuple(e):  # (FileTransfer, relative path): a file in its directory
            ref = e[0].referent()
            return _os.path.join(self.dirs.get(ref, self.places[ref]), e[1])
        if isinstance(e, (list, tuple)):  # soma-workflow: "['path1', 'path2']"
            return repr([self._path(x) for x in e])
        if isinstance(e, bytes):
            return _os.fsdecode(e)
        if isinstance(e, _os.PathLike):
            return _os.fspath(e)
        if isinstance(e, str):
            return e
        if isinstance(e, (int, float)) and not isinstance(e, bool):
            return str(e)
        raise InvalidArgument(f"a command element {e!r} is neither a str nor a path")

    def _refs(self, items):
        """The ferry transfers among items. On one file system a FileTransfer is the
        client's own path: nothing to wait for, and an output may not exist yet."""
        out = []
        for e in items:
            ref = e.referent() if isinstance(e, SpecialPath) else None
            if isinstance(ref, TemporaryPath) and ref.is_directory:
                continue  # a directory made at submission: nothing to produce
            if ref in self.tids:
                out.append(self.tids[ref])
            elif ref is None and self.ctrl._remote:
                out.append(self._path(e))
        return out

    def _argv(self, job):
        argv = [self._path(e) for e in job.get_commandline()]
        made = [self.mkdirs[p.referent()] for p in self._specials(job)
                if p.referent() in self.mkdirs]
        if made:  # the registered directory of several outputs is made by its writer
            argv = ["sh", "-c", 'for d; do [ "$d" = -- ] && break; mkdir -p "$d"; shift; '
                    'done; shift; exec "$@"', "sh", *dict.fromkeys(made), "--", *argv]
        return argv

    def _job_spec(self, job):
        if isinstance(job, BarrierJob):
            return {"barrier": True, **({"name": job.name} if job.name else {})}
        spec = {"argv": self._argv(job)}
        if job.name:
            spec["name"] = str(job.name)
        for attr, key in (("stdin", "stdin_path"), ("stdout_file", "stdout_path"),
                          ("stderr_file", "stderr_path"),
                          ("working_directory", "working_directory")):
            v = getattr(job, attr)
            if v is not None:
                spec[key] = self._path(v)
        if job.join_stderrout:
            spec["join_stderrout"] = True
        env = dict(self.wf.env or {})
        env.update(job.env or {})
        if env:
            spec["env"] = [f"{k}={v}" for k, v in env.items()]
        for key, items in (("referenced_input_files", job.referenced_input_files),
                           ("referenced_output_files", job.referenced_output_files)):
            refs = self._refs(items)
            if refs:
                spec[key] = refs
        spec["disposal_timeout_hours"] = self.hours or _hours(job.disposal_timeout,
                                                              "Job.disposal_timeout")
        if job.native_specification:
            spec["native_specification"] = job.native_specification
        if self.queue is not None:
            spec["queue"] = self.queue
        spec.update(self._parallel(job, ""))
        return spec

    def _group(self, g, depth=0):
        if depth > 32:
            raise InvalidArgument(f"group {g.name!r}: groups nest 32 levels at most")
        elems = []
        for e in g.elements:
            if isinstance(e, Group):
                elems.append(self._group(e, depth + 1))
            elif e in self.ids:
                elems.append(self.ids[e])
            else:
                raise InvalidArgument(f"group {g.name!r}: {e!r} is not a job of the workflow")
        return {"name": str(g.name), "elements": elems}

    def spec(self):
        wf = self.wf
        d = {"jobs": {self.ids[j]: self._job_spec(j) for j in wf.jobs},
             "dependencies": [[self.ids[a], self.ids[b]] for a, b in wf.dependencies]}
        if self.name is not None:
            d["name"] = str(self.name)
        groups = [self._group(g) for g in (wf.root_group or []) if isinstance(g, Group)]
        for e in wf.root_group or []:
            if not isinstance(e, Group) and e not in self.ids:
                raise InvalidArgument(f"root_group: {e!r} is not a job of the workflow")
        if groups:
            d["groups"] = groups
        d["disposal_timeout_hours"] = self.hours or _hours(wf.disposal_timeout,
                                                           "Workflow.disposal_timeout")
        return d


# ------------------------------------------------------------ ferry -> soma-workflow's words


def _date(t):
    return _dt.datetime.fromtimestamp(t) if t is not None else None


def _usage(info):
    parts = [f"{k}={info[k]}" for k in ("cpu_time", "cpu_user", "cpu_sys", "wall_time",
                                          "max_rss_kb") if info.get(k) is not None]
    return " ".join(parts) or None


def _soma_job(info):
    """(status, (exit_status, exit_value, terminating_signal, resource_usage))
    of a job dict of `ferry info --json`, in soma-workflow's words: a job that
    exited non-zero is done with that exit value; one that never ran because an
    ancestor failed or the workflow was stopped is failed/aborted_before_running."""
    st, es = info["status"], info["exit_status"]
    if st not in (C.DONE, C.FAILED):
        return st, (C.EXIT_UNDETERMINED, None, None, None)
    usage, ran = _usage(info), info.get("started_at") is not None
    if st == C.DONE or es == C.FINISHED_REGULARLY:
        return C.DONE, (C.FINISHED_REGULARLY, info["exit_value"] or 0, None, usage)
    if es == C.FINISHED_TERM_SIG:
        return C.FAILED, (C.FINISHED_TERM_SIG, None, info["signal"], usage)
    if es in (C.USER_KILLED, C.EXIT_ABORTED):
        if not ran:
            return C.FAILED, (C.EXIT_NOTRUN, None, None, None)
        return C.FAILED, (es, None, info["signal"] or None, usage)
    return C.FAILED, (C.FINISHED_UNCLEAR_CONDITIONS, None, None, usage)


# How long stop_workflow() and a forced deletion wait for the jobs killed to
# end: the kill's 5 s grace, and a cluster's cancel.
_KILL_WAIT_S = 60


def _until(done, timeout=_KILL_WAIT_S):
    """True once done() is, False after timeout seconds."""
    end = _time.monotonic() + timeout
    while not done():
        if _time.monotonic() > end:
            return False
        _time.sleep(0.1)
    return True


_WF_STATES = {"not started": C.WORKFLOW_NOT_STARTED, "in progress": C.WORKFLOW_IN_PROGRESS,
              "done": C.WORKFLOW_DONE, "done with failures": C.WORKFLOW_DONE}


def _soma_workflow_status(ws):
    if ws["status"] in _WF_STATES:
        return _WF_STATES[ws["status"]]
    # stopped: soma-workflow says done once its jobs all ended
    ended = sum(n for s, n in ws["counts"].items() if s in (C.DONE, C.FAILED))
    return C.WORKFLOW_DONE if ended == ws["jobs"] else C.WORKFLOW_IN_PROGRESS


_TRANSFER_STATES = {("send", "transferring"): C.TRANSFERING_FROM_CLIENT_TO_CR,
                    ("send", "ready"): C.FILES_ON_CLIENT_AND_CR,
                    ("send", "retrieved"): C.FILES_ON_CLIENT_AND_CR,
                    ("register", "registered"): C.FILES_DO_NOT_EXIST,
                    ("register", "produced"): C.FILES_ON_CR,
                    ("register", "retrieved"): C.FILES_ON_CLIENT_AND_CR}


def _sections(config_file):
    """The sections of ferry.conf (config_file, or where libferry looks for it),
    as {name: {key: value}}; {} when there is none."""
    path = config_file
    if path is None:
        x, home = _os.environ.get("XDG_CONFIG_HOME"), _os.environ.get("HOME")
        path = (_os.path.join(x, "ferry", "ferry.conf") if x and x.startswith("/") else
                _os.path.join(home or "/", ".config", "ferry", "ferry.conf"))
    cp = _configparser.ConfigParser(strict=False, interpolation=None,
                                    comment_prefixes=("#", ";"))
    try:
        cp.read(path)
    except _configparser.Error as e:
        raise _ferry.ConfigurationError(f"cannot read '{path}': {e}") from None
    return {s: dict(cp.items(s)) for s in cp.sections()}


# ------------------------------------------------------------ WorkflowController


class WorkflowController:
    """Submission, control and monitoring of Workflows on a ferry resource.

    resource_id: None, "localhost" or this machine's name: the local machine;
    else the name of a section of ferry.conf. login and password as for
    ferry.Connection. config: the path of a ferry.conf (soma-workflow's
    Configuration objects are not ferry's: Unsupported)."""

    def __init__(self, resource_id=None, login=None, password=None, config=None,
                 rsa_key_pass=None, isolated_light_mode=None):
        if config is not None and not isinstance(config, (str, _os.PathLike)):
            _unsupported("WorkflowController(config=<soma-workflow Configuration>)",
                         "ferry reads ferry.conf: give its path, or None")
        if rsa_key_pass is not None:
            _unsupported("WorkflowController(rsa_key_pass=...)",
                         "ferry's ssh uses your ssh agent or a key without passphrase")
        if isolated_light_mode is not None:
            _unsupported("WorkflowController(isolated_light_mode=...)",
                         "each ferry resource has one engine and one database")
        config = _os.fspath(config) if config is not None else None
        sections = _sections(config)
        # soma-workflow names this machine so; a ferry.conf section of that name wins
        if resource_id in ("localhost", _socket.gethostname(), _socket.getfqdn()) and \
                resource_id not in sections:
            resource_id = None
        self._resource_id = resource_id
        self._args = (resource_id, login, password or None, config)
        self._conn = _ferry.Connection(*self._args)
        # a resource with a host sees another file system: FileTransfers are transfers
        self._remote = resource_id is not None and "host" in sections.get(resource_id, {})
        self._records = {}  # workflow id -> [(transfer id, SpecialPath, kind)]
        self.config = config

    # soma-workflow's calls ferry has nothing for: named, not an AttributeError
    _NOT_HERE = {
        "get_engine_job": "ferry's engine jobs are not Python objects: use job_status()",
        "updated_job_parameters": "ferry has no job parameters",
        "get_job_output_params": "ferry has no job outputs",
        "get_queue_limits": "the limits are keys of ferry.conf (max_queued, max_running)",
        "set_queue_limits": "the limits are keys of ferry.conf (max_queued, max_running)",
        "get_running_jobs_limits": "the limits are keys of ferry.conf",
        "set_running_jobs_limits": "the limits are keys of ferry.conf",
        "scheduler_config": "ferry's scheduler is configured in ferry.conf",
        "engine_config_proxy": "ferry's engine is configured in ferry.conf",
    }

    def __getattr__(self, name):
        if name in WorkflowController._NOT_HERE:
            _unsupported(f"WorkflowController.{name}", WorkflowController._NOT_HERE[name])
        raise AttributeError(f"'WorkflowController' object has no attribute '{name}'")

    def get_scheduler_type(self):
        """The backend of the resource (ferry.conf's scheduler: local, slurm, drmaa)."""
        return _sections(self.config).get(self._resource_id or "", {}).get(
            "scheduler", "local")

    def drms_job_id(self, wf_id, job_id):
        """The job's id in the cluster (its process id on the local scheduler)."""
        return self._conn.jobInformation(job_id)["native_id"]

    def get_job_command(self, job_id):
        return self._conn.jobInformation(job_id)["command"]

    # -- connection
    def disconnect(self):
        """Closes the connection (soma-workflow's test helper; the jobs go on)."""
        self._conn.close()

    def stop_engine(self):
        """Closes the connection; ferry's engine goes on running the jobs."""
        self._conn.close()

    # -- submission
    def submit_workflow(self, workflow, expiration_date=None, name=None, queue=None):
        """Submits workflow in one request; returns its id. Its input FileTransfers
        are sent to a remote resource now (soma-workflow sends them at
        Helper.transfer_input_files(), which then finds nothing left to send)."""
        b = _Builder(self, workflow, expiration_date, name, queue)
        b.check()
        try:
            b.place()
            wf_id = self._conn.submit_workflow(b.spec())
        except BaseException:
            b.cancel()
            raise
        self._records[wf_id] = b.records
        return wf_id

    def submit_job(self, job, queue=None):
        """Deprecated in soma-workflow: a workflow of one job; returns the job's id."""
        wf_id = self.submit_workflow(Workflow([job]), queue=queue)
        return next(iter(self._conn.list_jobs(workflow=wf_id)))

    def register_transfer(self, file_transfer):
        _unsupported("register_transfer()", "a FileTransfer is sent or registered when the "
                     "workflow naming it is submitted")

    # -- listing
    def workflow(self, workflow_id):
        """The Workflow as the engine has it: Jobs (job_id set) and dependencies."""
        ws = self._conn.workflow_status(workflow_id)
        infos = list(self._conn.list_jobs(workflow=workflow_id, detail=True))
        by_id = {}
        for info in infos:
            job = (BarrierJob(name=info["name"]) if not info["command"] else
                   Job(info["command"], name=info["name"],
                       working_directory=info["working_directory"],
                       native_specification=info["native_specification"],
                       disposal_timeout=info["disposal_timeout_hours"]))
            job.job_id = info["id"]
            by_id[info["id"]] = job
        deps = [(by_id[d], by_id[i["id"]]) for i in infos for d in i["dependencies"]
                if d in by_id]
        return Workflow(list(by_id.values()), deps, name=ws["name"])

    def workflows(self, workflow_ids=None):
        """{workflow id: (name, expiration_date)}; expiration_date is None: a ferry
        workflow goes with its jobs' disposal timeouts, counted from each job's end."""
        wanted = None if workflow_ids is None else set(workflow_ids)
        return {w["id"]: (w["name"], None) for w in self._conn.workflows()
                if wanted is None or w["id"] in wanted}

    def jobs(self, job_ids=None):
        """{job id: (name, command, submission date)}: the given jobs, or those of
        no workflow."""
        if job_ids is not None:
            infos = [self._conn.jobInformation(j) for j in job_ids]
        else:
            infos = [i for i in self._conn.list_jobs(detail=True) if not i["workflow"]]
        return {i["id"]: (i["name"], " ".join(i["command"]), _date(i["submitted_at"]))
                for i in infos}

    def transfers(self, transfer_ids=None):
        """{transfer id: (client_path, expiration_date, client_paths)} of the
        transfers of the workflows submitted through this controller."""
        out = {}
        for recs in self._records.values():
            for tid, ref, kind in recs:
                if kind != "temporary" and (transfer_ids is None or tid in transfer_ids):
                    out[tid] = (ref.client_path, None, ref.client_paths)
        return out

    # -- monitoring
    def workflow_status(self, workflow_id):
        return _soma_workflow_status(self._conn.workflow_status(workflow_id))

    def workflow_elements_status(self, workflow_id, with_drms_id=True):
        """(jobs, transfers, workflow status, queue, temporary paths), as
        soma-workflow's: jobs as (job_id, status, queue, exit_info, (submission,
        execution, ending dates)[, drms id])."""
        ws = self._conn.workflow_status(workflow_id)
        jobs = []
        for info in self._conn.list_jobs(workflow=workflow_id, detail=True):
            status, exit_info = _soma_job(info)
            t = (info["id"], status, info["queue"], exit_info,
                 (_date(info["submitted_at"]), _date(info["started_at"]),
                  _date(info["ended_at"])))
            jobs.append(t + (info["native_id"],) if with_drms_id else t)
        transfers, temps = [], []
        for tid, ref, kind in self._workflow_records(workflow_id):
            if kind == "temporary":
                temps.append((tid, tid, self._transfer_state(tid, kind, ref)[0]))
            else:
                st, prog = self._transfer_state(tid, kind, ref)
                transfers.append((tid, (st, prog, tid, ref.client_path, ref.client_paths)))
        queue = jobs[0][2] if jobs else None
        return (jobs, transfers, _soma_workflow_status(ws), queue, temps)

    def _workflow_records(self, workflow_id):
        """The transfers of a workflow: those this controller made, else (a workflow
        submitted by another process) those its jobs name on a remote resource."""
        if workflow_id in self._records:
            return self._records[workflow_id]
        recs, seen = [], set()
        if not self._remote:
            return recs
        for info in self._conn.list_jobs(workflow=workflow_id, detail=True):
            for sp in info["referenced_input_files"] + info["referenced_output_files"]:
                if sp in seen:
                    continue
                seen.add(sp)
                try:
                    ti = self._conn.transferInformation(sp)
                except NoSuchJob:
                    continue
                lp = ti["local_paths"]
                ft = FileTransfer(ti["kind"] == "send", lp[0],
                                  client_paths=lp if len(lp) > 1 else None)
                recs.append((sp, ft, ti["kind"]))
        return recs

    def _transfer_state(self, tid, kind, ref):
        if kind == "local":
            if ref.is_input or _os.path.exists(ref.client_path):
                return C.FILES_ON_CLIENT_AND_CR, (100, 100)
            return C.FILES_DO_NOT_EXIST, (100, 100)
        try:
            ti = self._conn.transferInformation(tid)
        except NoSuchJob:
            return C.FILES_DO_NOT_EXIST, None
        k = "register" if kind == "temporary" else ti["kind"]
        st = _TRANSFER_STATES.get((k, ti["state"]), C.FILES_DO_NOT_EXIST)
        return st, (ti["size"], ti["done"])

    def transfer_status(self, transfer_id):
        for recs in self._records.values():
            for tid, ref, kind in recs:
                if tid == transfer_id:
                    return self._transfer_state(tid, kind, ref)
        if not self._remote:
            raise NoSuchJob(f"no transfer '{transfer_id}' in the workflows of this controller")
        ti = self._conn.transferInformation(transfer_id)
        return self._transfer_state(transfer_id, ti["kind"], None)

    def job_status(self, job_id):
        return _soma_job(self._conn.jobInformation(job_id))[0]

    def job_termination_status(self, job_id):
        return _soma_job(self._conn.jobInformation(job_id))[1]

    def retrieve_job_stdouterr(self, job_id, stdout_file_path, stderr_file_path=None,
                               buffer_size=512 ** 2):
        """Copies the job's stdout (and stderr) to the files named."""
        for stream, dest in (("stdout", stdout_file_path), ("stderr", stderr_file_path)):
            if dest is not None:
                self._copy_output(job_id, stream, _os.path.abspath(dest), buffer_size)

    def _copy_output(self, job_id, stream, dest, buffer_size):
        info = self._conn.jobInformation(job_id)
        with open(dest, "wb") as out:
            if stream == "stderr" and info["join_stderrout"]:
                return  # soma-workflow gives an empty stderr when it is joined
            try:
                f, _ = self._conn.open_output(job_id, stream)
            except Unsupported:  # another file system: the engine reads it for us
                f = None
                self._read_lines(job_id, stream, out)
            if f is not None:
                with f:
                    while True:
                        chunk = f.read(buffer_size)
                        if not chunk:
                            break
                        out.write(chunk)

    def _read_lines(self, job_id, stream, out):
        # a fresh connection: each keeps its own place in a job's output
        with _ferry.Connection(*self._args) as c:
            read = c.stdoutReadLine if stream == "stdout" else c.stderrReadLine
            while True:
                line = read(job_id, -1)
                if not line:
                    break
                out.write(line.encode("utf-8", "surrogateescape"))

    # -- waiting
    def wait_job(self, job_ids, timeout=-1):
        self._conn.wait(list(job_ids), timeout=timeout)

    def wait_workflow(self, workflow_id, timeout=-1):
        self._conn.wait_workflow(workflow_id, timeout)

    # -- control
    def stop_workflow(self, workflow_id):
        """Kills the jobs not ended and returns once they were (soma-workflow's
        stop_workflow): True when every one was; False when a job refused or
        had not ended within a minute."""
        if self._conn.stop_workflow(workflow_id).failed:
            return False
        return self._conn.wait_workflow(workflow_id, timeout=_KILL_WAIT_S)

    def restart_workflow(self, workflow_id, queue=None):
        """Runs the failed, aborted and killed jobs again; True when some will."""
        if queue is not None:
            _unsupported("restart_workflow(queue=...)",
                         "a restarted job keeps the queue it was submitted to")
        return self._conn.restart_workflow(workflow_id) > 0

    def delete_workflow(self, workflow_id, force=True):
        """Disposes of the workflow, its jobs (killing the running ones) and the
        transfers made for it; True when no job refused."""
        recs = self._workflow_records(workflow_id)
        res = self._conn.dispose_workflow(workflow_id)
        for tid, _, kind in recs:
            if kind != "local":
                try:
                    self._conn.cancelTransfer(tid, force=True)
                except NoSuchJob:
                    pass
        self._records.pop(workflow_id, None)
        if res.failed:
            return False
        # force: soma-workflow's call blocks until the workflow is deleted
        return not force or _until(lambda: not list(self._conn.list_jobs(workflow=workflow_id,
                                                                      limit=1)))

    def stop_jobs(self, workflow_id, job_ids):
        """Kills these jobs of the workflow (what is downstream of them aborts)."""
        mine = set(self._conn.list_jobs(workflow=workflow_id))
        for j in job_ids:
            if j not in mine:
                raise NoSuchJob(f"job {j} is not a job of workflow {workflow_id}")
        return self._conn.kill(ids=list(job_ids)).failed == 0

    def restart_jobs(self, workflow_id, job_ids):
        _unsupported("restart_jobs()", "ferry restarts a workflow's failed jobs as a whole: "
                     "use restart_workflow()")

    def kill_job(self, job_id):
        self._conn.kill(job_id)

    def restart_job(self, job_id):
        _unsupported("restart_job()", "use restart_workflow()")

    def delete_job(self, job_id, force=True):
        """Disposes of the job (killed first if it runs); with force, returns
        once it is gone (False when it was not within a minute)."""
        self._conn.dispose(job_id)

        def gone():
            try:
                self._conn.status(job_id)
                return False
            except NoSuchJob:
                return True
        return not force or _until(gone)

    def change_workflow_expiration_date(self, workflow_id, new_expiration_date):
        _unsupported("change_workflow_expiration_date()",
                     "a job's disposal timeout is fixed at its submission")

    # -- transfers
    def transfer_files(self, transfer_ids, buffer_size=512 ** 2):
        """Brings each transfer's files to the side that lacks them: an input is
        on the resource once submit_workflow() returned; an output is retrieved
        to its client path (overwriting it). On one file system there is
        nothing to move: the client path is the resource's."""
        if isinstance(transfer_ids, str):
            transfer_ids = [transfer_ids]
        kinds = {tid: (kind, ref) for recs in self._records.values()
                 for tid, ref, kind in recs}
        for tid in transfer_ids:
            kind, ref = kinds.get(tid, (None, None))
            if kind == "local":
                continue
            if kind is None:
                if not self._remote:
                    raise NoSuchJob(f"no transfer '{tid}' in the workflows of this controller")
                kind = self._conn.transferInformation(tid)["kind"]
            if kind == "register":
                self._conn.retrieveFile(tid, overwrite=True)
            elif kind == "register_files":
                self._retrieve_files(tid, ref)
        return True

    def _retrieve_files(self, tid, ft):
        """The registered directory of several outputs, each file to its client path."""
        stage = _tempfile.mkdtemp(prefix=".ferry-soma-", dir=_os.path.dirname(
            _os.path.abspath(ft.client_path)))
        try:
            got = _os.path.join(stage, "files")
            self._conn.retrieveFile(tid, got)
            for p in ft.client_paths:
                src = _os.path.join(got, _os.path.basename(p))
                if not _os.path.lexists(src):
                    continue
                if _os.path.isdir(p) and not _os.path.islink(p):
                    _shutil.rmtree(p)  # soma-workflow overwrites, a directory too
                _os.replace(src, p)
        finally:
            _shutil.rmtree(stage, ignore_errors=True)

    def delete_transfer(self, transfer_id):
        if self._remote:
            self._conn.cancelTransfer(transfer_id)
        for recs in self._records.values():
            recs[:] = [r for r in recs if r[0] != transfer_id]

    def log_failed_workflow(self, workflow_id, file=None):
        """Prints the failed jobs of the workflow with their outputs; True when
        the workflow is done and none failed."""
        import sys
        file = file or sys.stderr
        status = self.workflow_status(workflow_id)
        failed = Helper.list_failed_jobs(workflow_id, self)
        for j in failed:
            info = self._conn.jobInformation(j)
            print(f"+ job {j}: {info['name']}, status: {info['status']}, exit: "
                  f"{info['exit_status']}, value: {info['exit_value']}, message: "
                  f"{info['message']}\n  commandline: {info['command']}", file=file)
        return status == C.WORKFLOW_DONE and not failed


# ------------------------------------------------------------ Helper and serialisation


class Helper:
    """soma-workflow's Helper: static conveniences over a WorkflowController."""

    @staticmethod
    def list_failed_jobs(workflow_id, wf_ctrl, include_aborted_jobs=False,
                         include_user_killed_jobs=False, include_statuses=None):
        jobs = wf_ctrl.workflow_elements_status(workflow_id, with_drms_id=True)[0]
        if include_statuses is None:
            include_statuses = set(C.JOB_EXIT_STATUS)
            if not include_user_killed_jobs:
                include_statuses.discard(C.USER_KILLED)
            if not include_aborted_jobs:
                include_statuses -= {C.EXIT_ABORTED, C.EXIT_NOTRUN}
        return [job_id for job_id, status, _, exit_info, _, _ in jobs
                if (status == C.DONE and exit_info[1] != 0) or
                (status == C.FAILED and exit_info[0] in include_statuses)]

    @staticmethod
    def delete_all_workflows(wf_ctrl, force=True):
        ok = True
        for wf_id in list(wf_ctrl.workflows()):
            ok = wf_ctrl.delete_workflow(wf_id, force) and ok
        return ok

    @staticmethod
    def wait_workflow(workflow_id, wf_ctrl):
        wf_ctrl.wait_workflow(workflow_id)

    @staticmethod
    def _transfer(workflow_id, wf_ctrl, wanted, buffer_size):
        """Moves the workflow's transfers in one of the wanted states."""
        todo = [t[0] for t in wf_ctrl.workflow_elements_status(workflow_id)[1]
                if t[1][0] in wanted]
        wf_ctrl.transfer_files(todo, buffer_size)

    @staticmethod
    def transfer_input_files(workflow_id, wf_ctrl, buffer_size=512 ** 2):
        Helper._transfer(workflow_id, wf_ctrl,
                         (C.FILES_ON_CLIENT, C.TRANSFERING_FROM_CLIENT_TO_CR), buffer_size)

    @staticmethod
    def transfer_output_files(workflow_id, wf_ctrl, buffer_size=512 ** 2):
        Helper._transfer(workflow_id, wf_ctrl,
                         (C.FILES_ON_CR, C.TRANSFERING_FROM_CR_TO_CLIENT), buffer_size)

    @staticmethod
    def serialize(file_path, workflow):
        """Writes workflow as JSON, in soma-workflow's layout (Workflow.to_dict())."""
        try:
            with open(file_path, "w") as f:
                _json.dump(_to_dict(workflow), f, indent=4)
        except (OSError, TypeError, ValueError) as e:
            raise SerializationError(f"{type(e).__name__}: {e}") from e

    @staticmethod
    def unserialize(file_path):
        """Reads a workflow written by serialize() (or soma-workflow's JSON)."""
        try:
            with open(file_path) as f:
                return _from_dict(_json.load(f))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SerializationError(f"{type(e).__name__}: {e}") from e

    @staticmethod
    def convert_wf_file_for_p2_5(origin_file_path, target_file_path):
        _unsupported("Helper.convert_wf_file_for_p2_5()", "it writes a Python 2.5 pickle")

    @staticmethod
    def cpu_count():
        return _os.cpu_count() or 1


_JOB_CLASS = "soma_workflow.client_types.Job"
_BARRIER_CLASS = "soma_workflow.custom_jobs.BarrierJob"
_JOB_ATTRS = ("name", "join_stderrout", "priority", "native_specification",
              "parallel_job_info", "disposal_timeout", "env", "use_input_params_file",
              "has_outputs", "configuration")
_PATH_ATTRS = ("stdin", "stdout_file", "stderr_file", "working_directory",
               "input_params_file", "output_params_file")


def _job_dict(j, ser):
    """soma-workflow's Job.to_dict(), its paths made references by ser()."""
    d = {"class": _BARRIER_CLASS if isinstance(j, BarrierJob) else _JOB_CLASS}
    d.update({a: getattr(j, a) for a in _JOB_ATTRS})
    d["command"] = ser(list(j.command))
    for a in ("referenced_input_files", "referenced_output_files"):
        if getattr(j, a):
            d[a] = ser(list(getattr(j, a)))
    for a in _PATH_ATTRS:
        if getattr(j, a):
            d[a] = ser(getattr(j, a))
    if j.param_dict:
        d["param_dict"] = ser(j.param_dict)
    return d


def _to_dict(wf):
    """soma-workflow's Workflow.to_dict(): ids for jobs, groups and paths from one
    counter, the paths' fields under serialized_*; a path is ["<id>", n], a
    (FileTransfer, relative path) pair ["soma-workflow-tuple", ["<id>", n], rel]."""
    counter, job_ids, group_ids = iter(range(1 << 62)), {}, {}
    tables = {FileTransfer: {}, SharedResourcePath: {}, TemporaryPath: {}}

    def ser(e):
        if isinstance(e, SpecialPath):
            table = tables[type(e.referent())]
            if e.referent() not in table:
                table[e.referent()] = next(counter)
            ref = ["<id>", table[e.referent()]]
            return ref if e.pattern == "%s" else {"<pattern>": e.pattern, "<ref>": ref}
        if _is_ft_tuple(e):
            return ["soma-workflow-tuple", ser(e[0]), e[1]]
        if isinstance(e, (list, tuple)):
            return [ser(x) for x in e]
        if isinstance(e, dict):
            return {k: ser(v) for k, v in e.items()}
        return e

    for j in wf.jobs:
        job_ids[j] = next(counter)
    for g in wf.groups:
        group_ids[g] = next(counter)
    jobs = {str(n): _job_dict(j, ser) for j, n in job_ids.items()}

    def elem(e):
        return job_ids[e] if isinstance(e, Job) else group_ids[e]

    out = {"name": wf.name, "jobs": [job_ids[j] for j in wf.jobs],
           "dependencies": [[job_ids[a], job_ids[b]] for a, b in wf.dependencies],
           "param_links": {}, "groups": [group_ids[g] for g in wf.groups],
           "root_group": [elem(e) for e in wf.root_group],
           "serialized_groups": {str(n): {"name": g.name, "elements": [elem(e) for e in g.elements]}
                                 for g, n in group_ids.items()},
           "serialized_jobs": jobs}
    names = {FileTransfer: "serialized_file_transfers",
             SharedResourcePath: "serialized_shared_res_paths",
             TemporaryPath: "serialized_temporary_paths"}
    fields = {FileTransfer: ("client_path", "client_paths", "initial_status",
                             "disposal_timeout", "name"),
              SharedResourcePath: ("relative_path", "namespace", "uuid", "disposal_timeout"),
              TemporaryPath: ("is_directory", "disposal_timeout", "name", "suffix")}
    for cls, table in tables.items():
        out[names[cls]] = {str(n): dict({f: getattr(p, f) for f in fields[cls]},
                                        pattern="%s") for p, n in table.items()}
    out["serialized_option_paths"] = {}
    if wf.env:
        out["env"] = wf.env
    if wf.env_builder_code is not None:
        out["env_builder_code"] = wf.env_builder_code
    return out


def _from_dict(d):
    paths = {}
    for n, f in d.get("serialized_file_transfers", {}).items():
        p = FileTransfer(f.get("initial_status") == C.FILES_ON_CLIENT, f["client_path"],
                         f.get("disposal_timeout", 168), f.get("name"), f.get("client_paths"))
        paths[int(n)] = p
    for n, f in d.get("serialized_shared_res_paths", {}).items():
        paths[int(n)] = SharedResourcePath(f["relative_path"], f["namespace"], f["uuid"],
                                           f.get("disposal_timeout", 168))
    for n, f in d.get("serialized_temporary_paths", {}).items():
        paths[int(n)] = TemporaryPath(f.get("is_directory", False),
                                      f.get("disposal_timeout", 168), f.get("name"),
                                      f.get("suffix", ""))
    if d.get("serialized_option_paths") or d.get("param_links"):
        _unsupported("a serialized workflow with OptionPaths or param_links",
                     "ferry has no job parameters")

    def de(e):
        if isinstance(e, (list, tuple)):
            if len(e) == 2 and e[0] == "<id>" and isinstance(e[1], int) and e[1] in paths:
                return paths[e[1]]
            if len(e) == 3 and e[0] == "soma-workflow-tuple":
                return (de(e[1]), e[2])
            return [de(x) for x in e]
        if isinstance(e, dict):
            if set(e) == {"<pattern>", "<ref>"}:
                p = type(de(e["<ref>"]))(de(e["<ref>"]))
                p.pattern = e["<pattern>"]
                return p
            return {k: de(v) for k, v in e.items()}
        return e

    jobs = {}
    for n, jd in d.get("serialized_jobs", {}).items():
        if jd.get("class", _JOB_CLASS).endswith("BarrierJob"):
            job = BarrierJob(name=jd.get("name"))
        else:
            job = Job(de(jd["command"]))
        for k, v in jd.items():
            if k not in ("class", "command", "uuid"):
                setattr(job, k, de(v))
        jobs[int(n)] = job
    groups, todo = {}, dict(d.get("serialized_groups", {}))
    while todo:  # a group is made once the groups it holds are
        ready = [n for n, g in todo.items()
                 if all(e in jobs or e in groups for e in g["elements"])]
        if not ready:
            raise ValueError("serialized_groups name unknown elements")
        for n in ready:
            g = todo.pop(n)
            groups[int(n)] = Group([jobs.get(e) or groups[e] for e in g["elements"]], g["name"])
    order = [jobs[n] for n in d.get("jobs", sorted(jobs))]
    root = [jobs[e] if e in jobs else groups[e] for e in d.get("root_group", [])]
    deps = [(jobs[a], jobs[b]) for a, b in d.get("dependencies", [])]
    return Workflow(order, deps, root_group=root or None, name=d.get("name"),
                    env=d.get("env") or {}, env_builder_code=d.get("env_builder_code"))


# soma_workflow.errors' names
SomaWorkflowError = _ferry.Error
UnknownObjectError = NoSuchJob
