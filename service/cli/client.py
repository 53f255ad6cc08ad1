"""A small synchronous client of Tracemill's HTTP API, used by the CLI and the demo."""

from __future__ import annotations

from typing import Any

import httpx

from service.errors import TracemillError
from service.settings import api_token

DEFAULT_TIMEOUT_S = 120.0


class ApiError(TracemillError):
    """The Tracemill API refused the request."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(f"HTTP {status_code}: {message}")
        self.status_code = status_code


class ApiClient:
    """Sends the token of ``TRACEMILL_TOKEN`` (unless given one) as a bearer token."""

    def __init__(self, base_url: str, timeout_s: float = DEFAULT_TIMEOUT_S, token: str | None = None) -> None:
        token = token or api_token()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s, headers=headers)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(0, f"cannot reach the Tracemill API at {self.http.base_url}: {exc}") from exc
        if response.status_code >= 400:
            try:
                message = response.json().get("message") or response.text
            except ValueError:
                message = response.text
            raise ApiError(response.status_code, message)
        return response.json()

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/v1/health")
        return result

    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/v1/jobs", json=body)
        return result

    def add_prompts(self, job_id: str, prompts: list[dict[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/v1/jobs/{job_id}/prompts", json={"prompts": prompts})
        return result

    def start_job(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/v1/jobs/{job_id}/start")
        return result

    def act(self, job_id: str, action: str) -> dict[str, Any]:
        """``cancel`` or ``resume`` a job."""
        result: dict[str, Any] = self._call("POST", f"/v1/jobs/{job_id}/{action}")
        return result

    def job(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/v1/jobs/{job_id}")
        return result

    def shards(self, job_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", f"/v1/jobs/{job_id}/shards")
        return result

    def workers(self, job_id: str | None = None) -> list[dict[str, Any]]:
        params = {"job": job_id} if job_id else {}
        result: list[dict[str, Any]] = self._call("GET", "/v1/workers", params=params)
        return result

    def close(self) -> None:
        self.http.close()
