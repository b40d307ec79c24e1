"""A local Hugging Face Hub for tests: enough of the Hub's HTTP API for create_repo, upload_folder /
create_commit (regular and LFS files), ``hf upload``, ``DatasetCard.load`` and ``load_dataset("org/name")``.

Run as a real process: ``python -m servers.hub_server --port 0 --token TOKEN --port-file FILE`` (tests/ on
sys.path). It writes its port to FILE once listening. State lives in memory; a repo is a set of commits, each
a full snapshot ``path -> entry``; LFS objects are stored by SHA-256 and verified on upload, so a partial upload
can never become a stored object.

Fault injection (``POST /__control`` with JSON): ``drop_uploads`` (n LFS PUTs read half their body and then
drop the connection), ``drop_commits`` (n commit requests dropped before answering), ``fail`` (``{"path":
substring, "status": code, "count": n}``: answer an error instead of serving). ``GET /__stats`` reports
counts of commits and uploads.

Why stdlib: no installable server accepts Hub writes, and http.server keeps this test double dependency-free.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".parquet", ".png", ".arrow", ".bin", ".safetensors")
USER = "tester"


def git_blob_sha(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def lfs_pointer(oid: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()


@dataclass
class Entry:
    size: int
    blob_id: str
    content: bytes | None = None  # regular files
    lfs_oid: str | None = None  # LFS files (content in Hub.lfs)


@dataclass
class Commit:
    oid: str
    parent: str | None
    title: str
    files: dict[str, Entry]


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)

    def resolve(self, rev: str) -> Commit | None:
        rev = unquote(rev)
        if rev in self.branches:
            return self.commits[self.branches[rev]]
        return self.commits.get(rev)


class Hub:
    """All server state, guarded by one lock."""

    def __init__(self, token: str, org: str) -> None:
        self.token, self.org = token, org
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self.control: dict[str, Any] = {"drop_uploads": 0, "drop_commits": 0, "fail": None}
        self.stats = {"commits": 0, "lfs_uploads": 0, "dropped": 0}

    def new_commit(self, repo: Repo, branch: str, title: str, files: dict[str, Entry]) -> Commit:
        parent = repo.branches.get(branch)
        digest = hashlib.sha1(json.dumps([parent, title, sorted((p, e.blob_id) for p, e in files.items())])
                              .encode() + str(len(repo.commits)).encode()).hexdigest()
        commit = Commit(digest, parent, title, files)
        repo.commits[digest] = commit
        repo.branches[branch] = digest
        self.stats["commits"] += 1
        return commit


API_REPO = re.compile(r"^/api/(models|datasets|spaces)/([^/]+/[^/]+)(?:/(.*))?$")
RESOLVE = re.compile(r"^/(datasets/|spaces/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")
LFS_BATCH = re.compile(r"^/(datasets/|spaces/)?([^/]+/[^/]+)\.git/info/lfs/objects/batch$")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: Hub

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    # -- plumbing -----------------------------------------------------------------------------------
    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))

    def _send(self, status: int, payload: Any = None, *, headers: dict[str, str] | None = None,
              raw: bytes | None = None, error_code: str | None = None) -> None:
        body = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
        self.send_header("Content-Length", str(len(body)))
        if error_code:
            self.send_header("X-Error-Code", error_code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, message: str, code: str | None = None) -> None:
        self._send(status, {"error": message}, error_code=code)

    def _drop(self) -> None:
        self.hub.stats["dropped"] += 1
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _auth(self) -> bool | None:
        """True for the valid token, None without one; answers 401 and returns False for a wrong one."""
        header = self.headers.get("Authorization", "")
        if not header:
            return None
        if header == f"Bearer {self.hub.token}":
            return True
        self._error(401, "Invalid credentials in Authorization header")
        return False

    def _admit(self) -> bool | None:
        """The gate of every API request: an injected failure answers before the token is even read.

        Returns ``_auth()``'s verdict, or False when the request has already been answered (failure or bad token).
        """
        if self._injected_failure():
            return False
        return self._auth()

    def _injected_failure(self) -> bool:
        fail = self.hub.control.get("fail")
        if fail and fail["path"] in self.path and fail["count"] > 0:
            fail["count"] -= 1
            self._error(int(fail["status"]), f"injected failure: {fail.get('message', 'server error')}")
            return True
        return False

    def _repo(self, repo_type: str, repo_id: str, auth: bool | None) -> Repo | None:
        repo = self.hub.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and not auth):
            self._error(404, f"Repository Not Found for url: {self.path}", "RepoNotFound")
            return None
        return repo

    def _base(self) -> str:
        return f"http://{self.headers.get('Host')}"

    # -- verbs --------------------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/__stats":
            return self._send(200, self.hub.stats)
        auth = self._admit()
        if auth is False:
            return None
        if path == "/api/whoami-v2":
            if not auth:
                return self._error(401, "Invalid username or password.")
            return self._send(200, {"type": "user", "name": USER, "fullname": USER, "orgs": [
                {"type": "org", "name": self.hub.org, "roleInOrg": "admin"}],
                "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}}})
        if m := RESOLVE.match(path):
            return self._resolve(("datasets" if m.group(1) == "datasets/" else "models"), m.group(2),
                                 m.group(3), unquote(m.group(4)), auth)
        if m := API_REPO.match(path):
            repo_type, repo_id, rest = m.group(1), m.group(2), m.group(3) or ""
            with self.hub.lock:
                repo = self._repo(repo_type, repo_id, auth)
                if repo is None:
                    return None
                if rest == "" or rest.startswith("revision/"):
                    return self._info(repo, unquote(rest[len("revision/"):]) if rest else "main")
                if rest.startswith("tree/"):
                    rev, _, sub = rest[len("tree/"):].partition("/")
                    query = parse_qs(urlsplit(self.path).query)
                    recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
                    return self._tree(repo, rev, unquote(sub).strip("/"), recursive)
                if rest == "refs":
                    return self._send(200, {"branches": [
                        {"name": n, "ref": f"refs/heads/{n}", "targetCommit": c} for n, c in repo.branches.items()],
                        "converts": [], "tags": []})
                if rest.startswith("commits/"):
                    commit = repo.resolve(rest[len("commits/"):])
                    out = []
                    while commit is not None:
                        out.append({"id": commit.oid, "title": commit.title, "message": "", "authors": [
                            {"user": USER}], "date": "2026-01-01T00:00:00.000Z"})
                        commit = repo.commits.get(commit.parent) if commit.parent else None
                    return self._send(200, out)
        return self._error(404, f"not found: {path}")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        body = self._body()
        if path == "/__control":
            with self.hub.lock:
                self.hub.control.update(json.loads(body or b"{}"))
            return self._send(200, self.hub.control)
        auth = self._admit()
        if auth is False:
            return None
        if m := LFS_BATCH.match(path):
            if not auth:
                return self._error(401, "Authorization required to upload")
            return self._lfs_batch(json.loads(body))
        if path == "/api/validate-yaml":
            return self._validate_yaml(json.loads(body))
        if path == "/api/repos/create":
            if not auth:
                return self._error(401, "You must be authenticated to create a repo")
            return self._create(json.loads(body))
        if m := API_REPO.match(path):
            repo_type, repo_id, rest = m.group(1), m.group(2), m.group(3) or ""
            if rest.startswith("commit/") and self.hub.control["drop_commits"] > 0:
                with self.hub.lock:
                    self.hub.control["drop_commits"] -= 1
                return self._drop()
            with self.hub.lock:
                repo = self._repo(repo_type, repo_id, auth)
                if repo is None:
                    return None
                if rest.startswith("preupload/"):
                    return self._preupload(repo, rest[len("preupload/"):], json.loads(body))
                if rest.startswith("paths-info/"):
                    return self._paths_info(repo, rest[len("paths-info/"):], body)
                if not auth:
                    return self._error(401, "Authorization required")
                if rest.startswith("commit/"):
                    return self._commit(repo, unquote(rest[len("commit/"):]), body)
                if rest.startswith("branch/"):
                    branch = unquote(rest[len("branch/"):])
                    if branch in repo.branches:
                        return self._error(409, f"Reference {branch} already exists")
                    repo.branches[branch] = repo.branches["main"]
                    return self._send(200, {})
        return self._error(404, f"not found: {path}")

    def do_PUT(self) -> None:
        path = urlsplit(self.path).path
        if not path.startswith("/__lfs/"):
            return self._error(404, "not found")
        oid = path[len("/__lfs/"):]
        if self.hub.control["drop_uploads"] > 0:
            with self.hub.lock:
                self.hub.control["drop_uploads"] -= 1
            length = int(self.headers.get("Content-Length", 0) or 0)
            self.rfile.read(length // 2) if length else self.rfile.readline()
            return self._drop()
        data = self._body()
        if hashlib.sha256(data).hexdigest() != oid:
            return self._error(400, f"uploaded content does not match oid {oid}")
        with self.hub.lock:
            self.hub.lfs[oid] = data
            self.hub.stats["lfs_uploads"] += 1
        return self._send(200, {})

    # -- endpoints ----------------------------------------------------------------------------------
    def _create(self, payload: dict[str, Any]) -> None:
        repo_type = (payload.get("type") or "model") + "s"
        name, org = payload["name"], payload.get("organization")
        repo_id = f"{org}/{name}" if org else (name if "/" in name else f"{USER}/{name}")
        if repo_id.split("/")[0] not in (USER, self.hub.org):
            return self._error(403, f"You don't have the rights to create a repo under {repo_id.split('/')[0]}")
        url = f"{self._base()}/{'' if repo_type == 'models' else repo_type + '/'}{repo_id}"
        with self.hub.lock:
            if (repo_type, repo_id) in self.hub.repos:
                return self._send(409, {"error": "You already created this repo", "url": url})
            private = bool(payload.get("private")) or payload.get("visibility") in ("private", "protected")
            repo = Repo(repo_type, repo_id, private)
            self.hub.repos[(repo_type, repo_id)] = repo
            gitattributes = b"".join(f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n".encode()
                                     for suffix in LFS_SUFFIXES)
            self.hub.new_commit(repo, "main", "initial commit", {".gitattributes": Entry(
                len(gitattributes), git_blob_sha(gitattributes), content=gitattributes)})
        return self._send(200, {"url": url, "name": repo_id})

    def _validate_yaml(self, payload: dict[str, Any]) -> None:
        """Like the Hub: the README's front matter must be a YAML mapping; list fields must be lists."""
        import yaml

        content = payload.get("content", "")
        match = re.match(r"^---\n(.*?)\n---\n", content, re.DOTALL)
        errors = []
        try:
            metadata = yaml.safe_load(match.group(1)) if match else {}
        except yaml.YAMLError as exc:
            metadata, errors = None, [{"message": f"YAML: {exc}"}]
        if metadata is not None and not isinstance(metadata, dict):
            errors.append({"message": "metadata must be a YAML mapping"})
        elif metadata:
            for key in ("task_categories", "task_ids", "size_categories", "configs"):
                if key in metadata and not isinstance(metadata[key], list):
                    errors.append({"message": f'"{key}" must be an array'})
        if errors:
            return self._send(400, {"errors": errors, "error": errors[0]["message"]})
        return self._send(200, {"errors": [], "warnings": []})

    def _info(self, repo: Repo, rev: str) -> None:
        commit = repo.resolve(rev)
        if commit is None:
            return self._error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return self._send(200, {
            "id": repo.repo_id, "_id": repo.repo_id, "author": repo.repo_id.split("/")[0], "sha": commit.oid,
            "private": repo.private, "disabled": False, "gated": False, "downloads": 0, "likes": 0, "tags": [],
            "lastModified": "2026-01-01T00:00:00.000Z", "createdAt": "2026-01-01T00:00:00.000Z",
            "siblings": [{"rfilename": p} for p in sorted(commit.files)],
        })

    def _entry_json(self, path: str, entry: Entry) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "file", "oid": entry.blob_id, "size": entry.size, "path": path}
        if entry.lfs_oid:
            out["lfs"] = {"oid": entry.lfs_oid, "size": entry.size,
                          "pointerSize": len(lfs_pointer(entry.lfs_oid, entry.size))}
        return out

    def _listing(self, commit: Commit, prefix: str, recursive: bool) -> list[dict[str, Any]]:
        out, dirs = [], set()
        for path in sorted(commit.files):
            if prefix and not path.startswith(prefix + "/"):
                continue
            rest = path[len(prefix) + 1:] if prefix else path
            parts = rest.split("/")
            for depth in range(1, len(parts) if recursive else min(2, len(parts))):
                directory = "/".join(([prefix] if prefix else []) + parts[:depth])
                if directory not in dirs:
                    dirs.add(directory)
                    out.append({"type": "directory", "oid": hashlib.sha1(directory.encode()).hexdigest(),
                                "size": 0, "path": directory})
            if recursive or len(parts) == 1:
                out.append(self._entry_json(path, commit.files[path]))
        return out

    def _tree(self, repo: Repo, rev: str, sub: str, recursive: bool) -> None:
        commit = repo.resolve(rev)
        if commit is None:
            return self._error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        if sub and not any(p.startswith(sub + "/") for p in commit.files):
            return self._error(404, f"{sub} does not exist on {rev}", "EntryNotFound")
        return self._send(200, self._listing(commit, sub, recursive))

    def _paths_info(self, repo: Repo, rev: str, body: bytes) -> None:
        commit = repo.resolve(rev)
        if commit is None:
            return self._error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        if self.headers.get("Content-Type", "").startswith("application/json"):
            paths = json.loads(body).get("paths", [])
        else:
            paths = parse_qs(body.decode()).get("paths", [])
        out = []
        for path in paths:
            path = path.strip("/")
            if path in commit.files:
                out.append(self._entry_json(path, commit.files[path]))
            elif any(p.startswith(path + "/") for p in commit.files):
                out.append({"type": "directory", "oid": hashlib.sha1(path.encode()).hexdigest(), "size": 0,
                            "path": path})
        return self._send(200, out)

    def _preupload(self, repo: Repo, rev: str, payload: dict[str, Any]) -> None:
        commit = repo.resolve(rev)
        files = []
        for item in payload.get("files", []):
            path = item["path"]
            lfs = path.endswith(LFS_SUFFIXES) or item.get("size", 0) > 10_000_000
            existing = commit.files.get(path) if commit else None
            oid = None
            if existing is not None:
                oid = existing.lfs_oid if existing.lfs_oid else existing.blob_id
            files.append({"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                          "oid": oid})
        return self._send(200, {"files": files, "commitOid": commit.oid if commit else None})

    def _lfs_batch(self, payload: dict[str, Any]) -> None:
        objects = []
        for obj in payload.get("objects", []):
            entry: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.hub.lfs:
                entry["actions"] = {"upload": {"href": f"{self._base()}/__lfs/{obj['oid']}", "header": {}}}
            objects.append(entry)
        return self._send(200, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"})

    def _commit(self, repo: Repo, rev: str, body: bytes) -> None:
        branch = rev
        if branch not in repo.branches:
            return self._error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        files = dict(repo.commits[repo.branches[branch]].files)
        title = "commit"
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                title = value.get("summary") or title
                parent = value.get("parentCommit")
                if parent and parent != repo.branches[branch]:
                    return self._error(412, "A commit has happened since. Please refresh and try again.")
            elif key == "file":
                content = base64.b64decode(value["content"])
                files[value["path"]] = Entry(len(content), git_blob_sha(content), content=content)
            elif key == "lfsFile":
                oid = value["oid"]
                if oid not in self.hub.lfs:
                    return self._error(400, f"LFS object {oid} for {value['path']} was never uploaded")
                files[value["path"]] = Entry(value["size"], git_blob_sha(lfs_pointer(oid, value["size"])),
                                             lfs_oid=oid)
            elif key == "deletedFile":
                if value["path"] not in files:
                    return self._error(404, "A file with this name doesn't exist", "EntryNotFound")
                del files[value["path"]]
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: e for p, e in files.items() if not p.startswith(prefix)}
        commit = self.hub.new_commit(repo, branch, title, files)
        prefix = "" if repo.repo_type == "models" else repo.repo_type + "/"
        return self._send(200, {"success": True, "commitOid": commit.oid, "pullRequestUrl": None,
                                "commitUrl": f"{self._base()}/{prefix}{repo.repo_id}/commit/{commit.oid}"})

    def _resolve(self, repo_type: str, repo_id: str, rev: str, path: str, auth: bool | None) -> None:
        with self.hub.lock:
            repo = self._repo(repo_type, repo_id, auth)
            if repo is None:
                return None
            commit = repo.resolve(rev)
            if commit is None:
                return self._error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
            entry = commit.files.get(path)
            if entry is None:
                return self._error(404, f"Entry not found: {path}", "EntryNotFound")
            data = self.hub.lfs[entry.lfs_oid] if entry.lfs_oid else entry.content
        assert data is not None
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{entry.lfs_oid or entry.blob_id}"',
                   "Accept-Ranges": "bytes"}
        if entry.lfs_oid:
            headers.update({"X-Linked-Etag": f'"{entry.lfs_oid}"', "X-Linked-Size": str(entry.size)})
        range_header = self.headers.get("Range")
        if range_header and (m := re.match(r"bytes=(\d*)-(\d*)", range_header)):
            start = int(m.group(1)) if m.group(1) else max(0, len(data) - int(m.group(2)))
            end = int(m.group(2)) if m.group(1) and m.group(2) else len(data) - 1
            end = min(end, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return self._send(206, raw=data[start:end + 1], headers=headers)
        return self._send(200, raw=data, headers=headers)


def serve(port: int, token: str, org: str, port_file: Path | None) -> None:
    Handler.hub = Hub(token, org)
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    if port_file is not None:
        tmp = port_file.with_suffix(".tmp")
        tmp.write_text(str(server.server_address[1]))
        tmp.replace(port_file)
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", required=True)
    parser.add_argument("--org", default="org")
    parser.add_argument("--port-file", type=Path)
    args = parser.parse_args()
    serve(args.port, args.token, args.org, args.port_file)


if __name__ == "__main__":
    main()
