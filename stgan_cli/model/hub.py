"""Everything that talks to the Hugging Face Hub: model references (``hf-hub:ORG/REPO[@REV]``),
downloads through huggingface_hub's cache, listing that cache, pushing a package."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import StganError

HUB_PREFIX = "hf-hub:"


# The Hub's own rules for repository names, checked here so that a name can never be a path
# ("../etc") into the cache, and so the answer is one line rather than the library's exception.
_HUB_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$")
_HUB_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$")


def parse_hub_ref(ref: str) -> tuple[str, str | None]:
    """``hf-hub:ORG/REPO[@REVISION]`` -> (repo id, revision)."""
    body = ref[len(HUB_PREFIX):]
    repo, at, revision = body.partition("@")
    parts = repo.split("/")
    if len(parts) != 2 or not all(_HUB_NAME.match(p) and ".." not in p and "--" not in p for p in parts):
        raise StganError(f"{ref}: expected hf-hub:ORG/REPO or hf-hub:ORG/REPO@REVISION, where ORG and "
                         "REPO are letters, digits, '-', '_' or '.' (no '..' or '--')")
    if at and (not _HUB_REVISION.match(revision) or ".." in revision or revision.endswith("/")):
        raise StganError(f"{ref}: '{revision}' is not a valid revision (a branch, tag or commit hash)")
    return repo, revision or None


def is_offline(offline: bool = False) -> bool:
    return offline or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def download(ref: str, files: tuple[str, ...], offline: bool = False) -> Path:
    """The ``files`` of a model from the Hugging Face Hub, through huggingface_hub's own cache
    (``HF_HUB_CACHE``)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    repo, revision = parse_hub_ref(ref)
    offline = is_offline(offline)
    try:
        folder = Path(snapshot_download(repo, revision=revision, local_files_only=offline,
                                        allow_patterns=list(files)))
    except LocalEntryNotFoundError:
        if offline:
            raise StganError(f"{ref}: not in the local Hugging Face cache, and offline mode is on "
                             "(run `stgan models download` with a network first)") from None
        raise StganError(f"{ref}: cannot reach the Hugging Face Hub and the model is not cached") from None
    except RepositoryNotFoundError:
        raise StganError(f"{ref}: no such repository on the Hub (or it is private: set HF_TOKEN)") from None
    except RevisionNotFoundError:
        raise StganError(f"{ref}: the repository has no revision '{revision}'") from None
    except OSError as exc:
        raise StganError(f"{ref}: cannot download ({exc})") from None
    except ValueError as exc:  # the library's own validation (HFValidationError) of names it refuses
        raise StganError(f"{ref}: refused by huggingface_hub ({str(exc).splitlines()[0]})") from None
    return folder


def cached_models(files: set[str]) -> list[dict]:
    """The model revisions in the Hugging Face cache that hold all of ``files``."""
    try:
        from huggingface_hub import scan_cache_dir

        cache = scan_cache_dir()
    except Exception:  # noqa: BLE001 - no cache yet, or an unreadable one: nothing cached to list
        return []
    rows = []
    for repo in sorted(cache.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        for rev in repo.revisions:
            if files <= {f.file_name for f in rev.files}:
                rows.append({"name": f"{HUB_PREFIX}{repo.repo_id}@{rev.commit_hash[:8]}",
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
