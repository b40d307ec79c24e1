"""The few Label Studio REST calls a review needs, over httpx2 (already installed with huggingface_hub).

Why not ``label-studio-sdk``: the calls are six endpoints, and the SDK pins its own pydantic, httpx, numpy and more
(it is installed beside the server in ``.venv-labelstudio``), which must not move the project's own packages.

Tokens: Label Studio 1.23 issues personal access tokens (JWT refresh tokens, exchanged at ``/api/token/refresh``
for a short-lived access token sent as ``Bearer``); servers that enable legacy tokens also accept
``Authorization: Token ...``. A token with two dots is taken for a personal access token. Every failure becomes a
:class:`ReviewError` that names the flag to fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from erc_synth.dataset_scripts.core.environment import LABEL_STUDIO_TOKEN_ENV
from erc_synth.dataset_scripts.core.errors import ErcSynthError

IMPORT_CHUNK = 500
PAGE_SIZE = 100


class ReviewError(ErcSynthError):
    """A Label Studio server that cannot be reached, refuses the token, or holds a project that does not fit."""


def _detail(response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("validation_errors") or body
        return str(detail)[:300]
    return str(body)[:300]


class LabelStudioClient:
    """A session with one Label Studio server."""

    def __init__(self, url: str, token: str, *, timeout: float = 120.0) -> None:
        import httpx2

        self.url = url.rstrip("/")
        self._httpx = httpx2
        self._http = httpx2.Client(base_url=self.url, timeout=timeout)
        if not token:
            raise ReviewError(f"no Label Studio token: set {LABEL_STUDIO_TOKEN_ENV} or pass --token")
        if token.count(".") == 2:  # a personal access token (JWT refresh token)
            access = self._call("POST", "/api/token/refresh", json={"refresh": token}, auth=False)["access"]
            self._http.headers["Authorization"] = f"Bearer {access}"
        else:
            self._http.headers["Authorization"] = f"Token {token}"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LabelStudioClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> Any:
        headers = None if auth else {"Authorization": ""}
        try:
            response = self._http.request(method, path, headers=headers, **kwargs)
        except self._httpx.TransportError as exc:
            raise ReviewError(f"--url {self.url}: no Label Studio server answers there "
                              f"({type(exc).__name__}: {exc})") from None
        if response.status_code in (401, 403):
            raise ReviewError(f"--token / ${LABEL_STUDIO_TOKEN_ENV}: the Label Studio server at {self.url} refused "
                              f"the token (HTTP {response.status_code}: {_detail(response)})")
        if response.status_code >= 400:
            raise ReviewError(f"Label Studio at {self.url}: {method} {path} answered HTTP {response.status_code}: "
                              f"{_detail(response)}")
        try:
            return response.json()
        except ValueError:
            raise ReviewError(f"--url {self.url}: {path} did not answer JSON; is this a Label Studio "
                              "server?") from None

    def find_project(self, title: str) -> dict | None:
        """The project titled exactly ``title``, or ``None``."""
        page = 1
        while True:
            body = self._call("GET", "/api/projects", params={"title": title, "page": page, "page_size": PAGE_SIZE})
            for project in body.get("results", []):
                if project.get("title") == title:
                    return project
            if not body.get("next"):
                return None
            page += 1

    def create_project(self, title: str, label_config: str, description: str) -> dict:
        return self._call("POST", "/api/projects", json={"title": title, "label_config": label_config,
                                                         "description": description})

    def update_project(self, project_id: int, **fields: Any) -> dict:
        return self._call("PATCH", f"/api/projects/{project_id}", json=fields)

    def tasks(self, project_id: int) -> list[dict]:
        """Every task of the project (data and meta), page by page."""
        tasks: list[dict] = []
        page = 1
        while True:
            body = self._call("GET", "/api/tasks", params={"project": project_id, "page": page,
                                                           "page_size": PAGE_SIZE, "fields": "all"})
            batch = body.get("tasks", [])
            tasks += batch
            if not batch or len(tasks) >= int(body.get("total", 0)):
                return tasks
            page += 1

    def import_tasks(self, project_id: int, tasks: Sequence[dict]) -> int:
        """Add ``tasks``; returns how many the server created."""
        created = 0
        for start in range(0, len(tasks), IMPORT_CHUNK):
            chunk = list(tasks[start:start + IMPORT_CHUNK])
            body = self._call("POST", f"/api/projects/{project_id}/import", json=chunk)
            created += int(body.get("task_count", 0))
        return created

    def export(self, project_id: int) -> list[dict]:
        """Every task with its annotations (Label Studio's JSON export)."""
        return self._call("GET", f"/api/projects/{project_id}/export", params={"exportType": "JSON"})

    def annotate(self, task_id: int, choices: Iterable[str], *, completed_by: int | None = None,
                 project_id: int | None = None) -> dict:
        """Submit one annotation as the labelling view does (used by tests and scripted reviews)."""
        from .label_config import CHOICES_NAME, DIALOGUE_NAME

        payload: dict[str, Any] = {"result": [{"from_name": CHOICES_NAME, "to_name": DIALOGUE_NAME,
                                               "type": "choices", "value": {"choices": list(choices)}}]}
        if completed_by is not None:
            payload["completed_by"] = completed_by
        params = {"project": project_id} if project_id is not None else None
        return self._call("POST", f"/api/tasks/{task_id}/annotations", params=params, json=payload)
