"""The Hugging Face Hub: listing what is here, pushing a package."""

from __future__ import annotations

from pathlib import Path

from . import modelstore
from .errors import StganError


def list_all() -> list[dict]:
    """Registry models (local folders) and stgan models in the Hugging Face cache."""
    rows = []
    for name, entry in modelstore.REGISTRY.items():
        folder = modelstore.models_dir() / name
        present = (folder / modelstore.WEIGHTS_FILE).exists()
        size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) if present else 0
        rows.append({"name": name, "source": "registry", "size": size, "present": present,
                     "description": entry.description})
    try:
        from huggingface_hub import scan_cache_dir

        cache = scan_cache_dir()
    except Exception:  # noqa: BLE001 - no cache yet, or an unreadable one: nothing cached to list
        return rows
    for repo in sorted(cache.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        for rev in repo.revisions:
            names = {f.file_name for f in rev.files}
            if {modelstore.CONFIG_FILE, modelstore.WEIGHTS_FILE} <= names:
                rows.append({"name": f"{modelstore.HUB_PREFIX}{repo.repo_id}@{rev.commit_hash[:8]}",
                             "source": "hf-cache", "size": rev.size_on_disk, "present": True})
    return rows


def push(folder: Path, repo_id: str, private: bool = False, revision: str | None = None) -> str:
    """Upload a package folder to ``repo_id``; one clear line for no token or no network."""
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError

    if repo_id.count("/") != 1:
        raise StganError(f"--push-to-hub {repo_id}: expected ORG/REPO")
    token = get_token()
    if not token:
        raise StganError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, revision=revision,
                                 commit_message="Upload stgan model")
    except HfHubHTTPError as exc:
        raise StganError(f"--push-to-hub {repo_id}: the Hub refused ({str(exc).splitlines()[0]})") from None
    except OSError as exc:
        raise StganError(f"--push-to-hub {repo_id}: cannot reach the Hugging Face Hub ({type(exc).__name__})") from None
    except Exception as exc:  # noqa: BLE001 - httpx/requests connection errors differ between versions
        if "connect" in type(exc).__name__.lower() or "connect" in str(exc).lower():
            raise StganError(f"--push-to-hub {repo_id}: cannot reach the Hugging Face Hub") from None
        raise
    return getattr(info, "commit_url", None) or f"https://huggingface.co/{repo_id}"
