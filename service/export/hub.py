"""Push an export folder to the Hugging Face Hub with huggingface_hub (private by default).

The token is handed to the client directly (it travels only in the Authorization header); it is never
logged, stored, or put in an error message.
"""

from __future__ import annotations

from pathlib import Path

from service.errors import TracemillError


class HubPushFailed(TracemillError):
    """The dataset could not be pushed to the Hub."""


def push_to_hub(folder: Path, repo_id: str, token: str | None, *, private: bool = True) -> str:
    """Create the dataset repository if needed and upload the folder in one commit; returns its URL."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    if not token:
        raise HubPushFailed("set HF_TOKEN in the environment to push to the Hub")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        commit = api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type="dataset",
            commit_message="Dataset exported by Tracemill",
        )
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise HubPushFailed(f"the Hub refused the push of {repo_id} (HTTP {status})") from None
    return str(commit.commit_url)
