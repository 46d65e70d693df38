#!/usr/bin/python3
"""Call an `ispec serve` (gRPC ispec.v1.ImageService) from Python.

A small client that shows how a tool other than the Go CLI resolves, builds
and looks up images through the service. It needs Debian's python3-grpcio
and python3-protobuf, and the stubs generated from the repository's .proto:

    bash scripts/proto.sh python /tmp/ispec-stubs
    PYTHONPATH=/tmp/ispec-stubs /usr/bin/python3 \\
        examples/python-client/ispec_client.py --server 127.0.0.1:8080 \\
        --token-file token.txt build imagespec.yaml

Spec files in YAML need python3-yaml; JSON and TOML specs need nothing more.

Use it as a module too:

    import ispec_client
    up = ispec_client.collect("imagespec.yaml")
    with ispec_client.connect("127.0.0.1:8080", token="...") as c:
        print(c.resolve(up).image.ref)
        result = c.build(up, on_event=ispec_client.print_event)
        print(result["ref"] + "@" + result["digest"])

What is uploaded (see SpecInput in api/ispec/v1/ispec.proto): the spec,
its lock file, its requirements file and the files that one includes, the
ignore files of the spec's folder, every entry of the `copy` and
`source_root` trees (folders and symlinks too, .git left out; the server
applies the ignore rules itself), and nested base specs with their own
files, and every folder that holds one of them (the server creates folders
from folder entries only). Copied files never travel inline: a build first
sends them by digest and size; only when the server answers files_needed
does the client ask which contents the server lacks (FindMissingBlobs) and
stream only those (WriteBlob, 1 MiB per message), then build. An image that
exists, or files the server holds from any earlier build, cost no upload.
"""

import argparse
import hashlib
import json
import os
import re
import stat
import sys
import time

import grpc

from ispec.v1 import ispec_pb2, ispec_pb2_grpc

# The server's largest message (MaxRecvMessageSize in the .proto).
MAX_MESSAGE = 16 << 20
# Bytes per WriteBlobRequest (MaxChunkBytes in the .proto).
CHUNK = 1 << 20

# Exit codes, as the ispec CLI uses them.
EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_UNAVAILABLE = 0, 1, 2, 3

IGNORE_FILES = (".ispecignore", ".dockerignore")


class ClientError(Exception):
    """A failed call or an unusable spec, with the CLI's exit code."""

    def __init__(self, message, exit_code=EXIT_UNAVAILABLE, spec_errors=()):
        super().__init__(message)
        self.exit_code = exit_code
        self.spec_errors = list(spec_errors)


class Entry:
    """One File entry of an upload, read from disk."""

    def __init__(self, path, abs_path, bulk):
        self.path = path  # slash-separated, relative to the upload root
        self.abs_path = abs_path
        self.bulk = bulk  # content sent only when the server must build
        st = os.lstat(abs_path)
        self.mode = stat.S_IMODE(st.st_mode)
        self.size = 0
        self.digest = ""
        self.target = ""
        if stat.S_ISLNK(st.st_mode):
            self.kind = ispec_pb2.FILE_KIND_SYMLINK
            self.target = os.readlink(abs_path)
        elif stat.S_ISDIR(st.st_mode):
            self.kind = ispec_pb2.FILE_KIND_DIRECTORY
        elif stat.S_ISREG(st.st_mode):
            self.kind = ispec_pb2.FILE_KIND_REGULAR
            self.size = st.st_size
            self.digest = file_digest(abs_path)
        else:
            raise ClientError(f"{path}: not a file, folder or symlink", EXIT_INVALID)

    def to_proto(self):
        """The File message: copied files by digest (their bytes go as
        blobs), other files with their bytes inline."""
        f = ispec_pb2.File(path=self.path, kind=self.kind, mode=self.mode,
                           size=self.size, digest=self.digest, target=self.target)
        if self.kind == ispec_pb2.FILE_KIND_REGULAR and not self.bulk:
            with open(self.abs_path, "rb") as fh:
                f.content = fh.read()
        return f


class Upload:
    """A spec and the files it references, rooted at the deepest folder
    that holds all of them."""

    def __init__(self, root, spec_path, spec, entries):
        self.root = root
        self.spec_path = spec_path
        self.spec = spec
        self.entries = entries

    def spec_input(self):
        """Returns the SpecInput and how many file content bytes it carries
        inline (the spec document itself not counted)."""
        files = [e.to_proto() for e in self.entries]
        sent = sum(len(f.content) for f in files)
        return ispec_pb2.SpecInput(spec_path=self.spec_path, spec=self.spec, files=files), sent

    def blobs(self):
        """{(digest, size): Entry} of the copied files' contents."""
        out = {}
        for e in self.entries:
            # An empty file needs no blob: the server takes no bytes as one.
            if e.kind == ispec_pb2.FILE_KIND_REGULAR and e.bulk and e.size:
                out.setdefault((e.digest, e.size), e)
        return out


def file_digest(p):
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def read_spec(p):
    """Parses a spec file (.yaml, .yml, .json or .toml) into a dict; an
    empty one when it does not parse (the server says why)."""
    with open(p, "rb") as fh:
        data = fh.read()
    ext = os.path.splitext(p)[1].lower()
    try:
        if ext == ".json":
            doc = json.loads(data)
        elif ext == ".toml":
            import tomllib
            doc = tomllib.loads(data.decode())
        elif ext in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise ClientError(f"{p}: reading YAML specs needs python3-yaml (apt-get install python3-yaml)", EXIT_INVALID)
            doc = yaml.safe_load(data)
        else:
            raise ClientError(f"{p}: unknown spec format {ext!r}; expected .yaml, .yml, .json or .toml", EXIT_INVALID)
    except ClientError:
        raise
    except Exception:
        # The server reports a malformed spec with its file, line and
        # field; no file of it can be collected.
        return {}
    return doc if isinstance(doc, dict) else {}


def _as_list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


_INCLUDE = re.compile(r"^\s*(?:-r|--requirement|-c|--constraint)(?:\s*=\s*|\s+)(\S+)")


def _requirement_files(p, seen):
    """The requirements file p and, recursively, the files its -r and -c
    lines include (relative to the including file)."""
    p = os.path.normpath(p)
    if p in seen or not os.path.isfile(p):
        return
    seen.add(p)
    yield p
    with open(p, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            m = _INCLUDE.match(line)
            if m and "://" not in m.group(1):
                yield from _requirement_files(os.path.join(os.path.dirname(p), m.group(1)), seen)


def _walk(top):
    """top and everything under it (folders, files, symlinks never
    followed), .git left out."""
    yield top
    if os.path.isdir(top) and not os.path.islink(top):
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if d != ".git")
            for n in dirnames + sorted(f for f in filenames if f != ".git"):
                yield os.path.join(dirpath, n)


def _spec_files(spec_file, nested, seen_specs):
    """(absolute path, bulk) of every file a spec and its nested base specs
    reference."""
    spec_file = os.path.abspath(spec_file)
    if spec_file in seen_specs:
        raise ClientError(f"{spec_file}: base_image.spec refers back to itself", EXIT_INVALID)
    seen_specs.add(spec_file)
    doc = read_spec(spec_file)
    here = os.path.dirname(spec_file)
    out = []
    if nested:
        out.append((spec_file, False))
    if os.path.isfile(spec_file + ".lock"):
        out.append((spec_file + ".lock", False))
    req = doc.get("requirements")
    if req:
        out += [(p, False) for p in _requirement_files(os.path.join(here, req), set())]
    copies = _as_list(doc.get("copy"))
    if copies:
        out += [(os.path.join(here, n), False) for n in IGNORE_FILES if os.path.isfile(os.path.join(here, n))]
    for c in copies:
        out += [(p, True) for p in _walk(os.path.join(here, str(c)))]
    src = doc.get("source_root")
    if src and str(doc.get("source_copy_mode", "")).lower() not in ("copynone", "copy_none", "none"):
        top = os.path.join(here, str(src))
        out += [(p, True) for p in _walk(top)]
        out += [(os.path.join(top, n), False) for n in IGNORE_FILES if os.path.isfile(os.path.join(top, n))]
    if doc.get("pip_secret_mounts"):
        raise ClientError(f"{spec_file}: pip_secret_mounts are not sent by this example client", EXIT_INVALID)
    base = doc.get("base_image")
    if isinstance(base, dict) and base.get("spec"):
        out += _spec_files(os.path.join(here, str(base["spec"])), True, seen_specs)
    return out


def collect(spec_file):
    """Reads a spec file and every file it references into an Upload.

    Paths that do not exist are left for the server to report (with the
    spec's file, line and field)."""
    spec_abs = os.path.abspath(spec_file)
    with open(spec_abs, "rb") as fh:
        spec = fh.read()
    items = [(os.path.normpath(p), bulk) for p, bulk in _spec_files(spec_abs, False, set())
             if os.path.lexists(p)]
    root = os.path.dirname(spec_abs)
    for p, _ in items:
        while os.path.commonpath([root, p]) != root:
            root = os.path.dirname(root)

    def rel(p):
        r = os.path.relpath(p, root).replace(os.sep, "/")
        return "." if r == "." else r

    spec_path = rel(spec_abs)
    entries, seen = [], {spec_path}
    for p, bulk in items:
        r = rel(p)
        if r in seen or r == ".":
            continue
        seen.add(r)
        entries.append(Entry(r, p, bulk))
    # Every folder that holds an entry is an entry itself.
    for r in sorted(seen):
        d = os.path.dirname(r)
        while d and d not in seen:
            seen.add(d)
            entries.append(Entry(d, os.path.join(root, d), False))
            d = os.path.dirname(d)
    return Upload(root, spec_path, spec, entries)


def _varint(buf, i):
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return n, i


def _fields(buf):
    """(field number, value) of a protobuf message's length-delimited and
    varint fields: enough to read google.rpc.Status without its stubs."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 2:
            n, i = _varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            return
        yield num, v


def spec_errors_of(err):
    """The SpecErrors detail of a failed call (an invalid spec): a list of
    ispec_pb2.SpecError."""
    out = []
    for k, v in (err.trailing_metadata() or ()):
        if k != "grpc-status-details-bin":
            continue
        for num, anyv in _fields(v):  # google.rpc.Status.details
            if num != 3:
                continue
            any_fields = dict(_fields(anyv))
            if any_fields.get(1, b"").decode().endswith("/ispec.v1.SpecErrors"):
                out += list(ispec_pb2.SpecErrors.FromString(any_fields.get(2, b"")).errors)
    return out


def _format_spec_error(e):
    where = e.file + (f":{e.line}" if e.line else "")
    return f"{where}: {e.field}: {e.message}" if e.field else f"{where}: {e.message}"


def call_error(addr, err):
    """A ClientError for a failed call, with the CLI's exit code: 2 for an
    invalid spec, 1 for a failed build step, 3 for an unreachable server or
    a refused call. Its `code` is the call's grpc.StatusCode."""
    e = _call_error(addr, err)
    e.code = err.code()
    return e


def _call_error(addr, err):
    code = err.code()
    details = err.details() or code.name
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND):
        specs = spec_errors_of(err)
        msg = "\n".join(_format_spec_error(e) for e in specs) or details
        return ClientError(msg, EXIT_INVALID, specs)
    if code == grpc.StatusCode.ABORTED:
        return ClientError(details, EXIT_FAILED)
    if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
        return ClientError(details, EXIT_FAILED)
    if code == grpc.StatusCode.UNAVAILABLE:
        return ClientError(f"server {addr} is not reachable: {details}", EXIT_UNAVAILABLE)
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return ClientError(f"server {addr} refused the call: {details}", EXIT_UNAVAILABLE)
    return ClientError(f"{code.name}: {details}", EXIT_UNAVAILABLE)


def event_name(ev):
    """The name of a BuildEvent's kind: accepted, joined, files_needed, ..."""
    return ev.WhichOneof("event") or "unknown"


def print_event(ev, out=sys.stderr):
    """Prints one BuildEvent as a line, as a plain progress display."""
    kind = event_name(ev)
    if kind == "progress":
        for v in ev.progress.vertexes:
            if v.HasField("completed"):
                state = "ERROR " + v.error if v.error else ("CACHED" if v.cached else "DONE")
                print(f"  {v.name} {state}", file=out)
        for log in ev.progress.logs:
            for line in log.data.decode(errors="replace").splitlines():
                print(f"  | {line}", file=out)
        return
    detail = ""
    if kind == "found":
        detail = f" {ev.found.digest} ({ispec_pb2.LookupSource.Name(ev.found.source)})"
    elif kind == "pushed":
        detail = f" {ev.pushed.digest}"
    elif kind == "done":
        detail = f" {ev.done.digest} {ispec_pb2.BuildOutcome.Name(ev.done.outcome)}"
    elif kind == "failed":
        detail = f" {ispec_pb2.ErrorClass.Name(ev.failed.error_class)}: {ev.failed.message}"
    elif kind == "queued":
        detail = f" position {ev.queued.position}"
    print(f"{kind} {ev.ref}{detail}", file=out)


class Client:
    """A connection to one server. Use connect()."""

    def __init__(self, addr, token=None, root_certificates=None, secure=None):
        self.addr = addr
        host = addr.rsplit(":", 1)[0].strip("[]")
        if secure is None:
            secure = root_certificates is not None or host not in ("localhost", "127.0.0.1", "::1")
        options = [("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", MAX_MESSAGE)]
        if secure:
            creds = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self.channel = grpc.secure_channel(addr, creds, options=options)
        else:
            self.channel = grpc.insecure_channel(addr, options=options)
        self.stub = ispec_pb2_grpc.ImageServiceStub(self.channel)
        self.metadata = [("authorization", "Bearer " + token)] if token else []
        self.bytes_sent = 0  # file content bytes uploaded so far

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def resolve(self, up):
        """ResolveResponse of an Upload: its reference, with no network."""
        inp, _ = up.spec_input()
        try:
            return self.stub.Resolve(ispec_pb2.ResolveRequest(input=inp), metadata=self.metadata)
        except grpc.RpcError as e:
            raise call_error(self.addr, e) from None

    def lookup(self, up, verify=False):
        """LookupResult of an Upload: whether its image exists."""
        inp, _ = up.spec_input()
        req = ispec_pb2.LookupRequest(items=[ispec_pb2.LookupItem(spec=inp)], verify=verify)
        try:
            return self.stub.Lookup(req, metadata=self.metadata).results[0]
        except grpc.RpcError as e:
            raise call_error(self.addr, e) from None

    def _build_once(self, req, on_event, events):
        """One Build stream: its `done` event, or None after files_needed."""
        last = None
        try:
            for ev in self.stub.Build(req, metadata=self.metadata):
                events.append(event_name(ev))
                if on_event:
                    on_event(ev)
                last = ev
                if event_name(ev) == "files_needed":
                    return None
        except grpc.RpcError as e:
            if last is not None and event_name(last) == "failed":
                f = last.failed
                msg = f.message
                if f.log_tail and f.log_tail[-1] not in msg:
                    msg += "\n" + "\n".join("  | " + line for line in f.log_tail)
                code = {ispec_pb2.ERROR_CLASS_INVALID: EXIT_INVALID, ispec_pb2.ERROR_CLASS_FAILED: EXIT_FAILED,
                        ispec_pb2.ERROR_CLASS_INTERNAL: EXIT_FAILED}.get(f.error_class, EXIT_UNAVAILABLE)
                raise ClientError(msg, code, f.spec_errors) from None
            raise call_error(self.addr, e) from None
        if last is None or event_name(last) != "done":
            raise ClientError(f"server {self.addr}: the build stream ended without a result", EXIT_FAILED)
        return last

    def send_blobs(self, up):
        """Sends the contents of the Upload's copied files the server
        lacks (and only those); returns the bytes sent."""
        blobs = up.blobs()
        keys = list(blobs)
        missing = []
        try:
            for i in range(0, len(keys), 10000):
                req = ispec_pb2.FindMissingBlobsRequest(
                    blobs=[ispec_pb2.Blob(digest=d, size=n) for d, n in keys[i:i + 10000]])
                resp = self.stub.FindMissingBlobs(req, metadata=self.metadata)
                missing += [(b.digest, b.size) for b in resp.missing]
        except grpc.RpcError as e:
            raise call_error(self.addr, e) from None
        sent = 0
        for key in missing:
            entry = blobs.get(key)
            if entry is None:
                continue
            counted = []

            def chunks(entry=entry, counted=counted):
                with open(entry.abs_path, "rb") as fh:
                    first, done = True, 0
                    while True:
                        data = fh.read(CHUNK)
                        done += len(data)
                        counted.append(len(data))
                        last = not data or done >= entry.size
                        msg = ispec_pb2.WriteBlobRequest(data=data, finish_write=last)
                        if first:
                            msg.blob.digest, msg.blob.size = entry.digest, entry.size
                            first = False
                        yield msg
                        if last:
                            return

            try:
                self.stub.WriteBlob(chunks(), metadata=self.metadata)
            except grpc.RpcError as e:
                err = call_error(self.addr, e)
                raise ClientError(f"sending {entry.path}: {err}", err.exit_code) from None
            sent += sum(counted)
        self.bytes_sent += sent
        return sent

    def build(self, up, force=False, no_cache=False, on_event=None,
              progress=ispec_pb2.PROGRESS_DETAIL_FULL):
        """Makes an Upload's image exist: first without copied files'
        bytes; when the server answers files_needed, sends the contents it
        lacks as blobs and builds. Returns a dict with ref, digest, outcome
        (BUILT, FOUND or JOINED), build_id, duration_s, bytes_sent (file
        content bytes uploaded) and the event kinds received."""
        opts = ispec_pb2.BuildOptions(force=force, no_cache=no_cache, progress=progress)
        inp, sent_total = up.spec_input()
        self.bytes_sent += sent_total
        events = []
        done = self._build_once(ispec_pb2.BuildRequest(input=inp, files_omitted=True, options=opts), on_event, events)
        attempt = 0
        while done is None:
            attempt += 1
            sent_total += self.send_blobs(up)
            inp, sent = up.spec_input()
            sent_total += sent
            self.bytes_sent += sent
            try:
                done = self._build_once(ispec_pb2.BuildRequest(input=inp, options=opts), on_event, events)
            except ClientError as e:
                # The server evicted a blob between its upload and the
                # build: send what it lacks again.
                if getattr(e, "code", None) == grpc.StatusCode.FAILED_PRECONDITION and attempt < 3:
                    continue
                raise
            if done is None:
                raise ClientError(f"server {self.addr}: asked for files it was sent", EXIT_FAILED)
        return {
            "ref": done.done.ref,
            "digest": done.done.digest,
            "outcome": ispec_pb2.BuildOutcome.Name(done.done.outcome).removeprefix("BUILD_OUTCOME_"),
            "build_id": done.build_id,
            "duration_s": done.done.duration.ToTimedelta().total_seconds(),
            "bytes_sent": sent_total,
            "events": events,
        }

    def list_builds(self, active_only=False, limit=0):
        """The server's recent and running builds (BuildInfo messages)."""
        try:
            return list(self.stub.ListBuilds(ispec_pb2.ListBuildsRequest(active_only=active_only, limit=limit),
                                             metadata=self.metadata).builds)
        except grpc.RpcError as e:
            raise call_error(self.addr, e) from None


def connect(addr, token=None, root_certificates=None, secure=None):
    """A Client of the server at HOST:PORT: plain text on loopback, TLS
    otherwise (root_certificates: PEM bytes of the CA, default the
    system's)."""
    return Client(addr, token=token, root_certificates=root_certificates, secure=secure)


def _identity(i):
    return {"ref": i.ref, "registry": i.registry, "repository": i.repository, "tag": i.tag, "spec_hash": i.spec_hash}


def main(argv=None):
    ap = argparse.ArgumentParser(description="Resolve, build or look up a spec's image through an `ispec serve`.")
    ap.add_argument("--server", default=os.environ.get("ISPEC_SERVER", ""), help="HOST:PORT (env ISPEC_SERVER)")
    ap.add_argument("--token-file", help="file whose first line is the bearer token (else env ISPEC_TOKEN)")
    ap.add_argument("--ca", help="PEM CA of the server's certificate (TLS)")
    ap.add_argument("--force", action="store_true", help="build: build and push even when the image exists")
    ap.add_argument("--quiet", action="store_true", help="build: print no events")
    ap.add_argument("command", choices=["resolve", "lookup", "build"])
    ap.add_argument("spec", help="the spec file")
    a = ap.parse_args(argv)
    if not a.server:
        print("error: --server HOST:PORT (or ISPEC_SERVER) is required", file=sys.stderr)
        return EXIT_INVALID
    token = os.environ.get("ISPEC_TOKEN") or None
    if a.token_file:
        with open(a.token_file) as fh:
            token = fh.readline().strip() or None
    ca = None
    if a.ca:
        with open(a.ca, "rb") as fh:
            ca = fh.read()
    try:
        up = collect(a.spec)
        with connect(a.server, token=token, root_certificates=ca) as c:
            if a.command == "resolve":
                r = c.resolve(up)
                out = {"image": _identity(r.image), "parents": [_identity(p) for p in r.parents]}
            elif a.command == "lookup":
                r = c.lookup(up)
                out = {"ref": r.ref, "state": ispec_pb2.LookupState.Name(r.state).removeprefix("LOOKUP_STATE_"),
                       "digest": r.digest, "source": ispec_pb2.LookupSource.Name(r.source).removeprefix("LOOKUP_SOURCE_"),
                       "error": r.error}
            else:
                start = time.monotonic()
                out = c.build(up, force=a.force, on_event=None if a.quiet else print_event)
                out["wall_s"] = round(time.monotonic() - start, 3)
    except ClientError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INVALID
    print(json.dumps(out))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
