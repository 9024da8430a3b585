"""Options that several commands share, typed once (huggingface_hub's CLI does the same), so that
``--device`` or ``--offline`` read and behave alike everywhere."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

DeviceOpt = Annotated[str, typer.Option("--device", help="auto | cpu | cuda[:N] | mps")]
# Training commands: unset keeps the config's run.device.
RunDeviceOpt = Annotated[Optional[str], typer.Option("--device", help="auto | cpu | cuda[:N] | mps (sets run.device)")]
OfflineOpt = Annotated[bool, typer.Option(
    "--offline", help="hf-hub: models only from the local Hugging Face cache (also HF_HUB_OFFLINE=1).")]
SetOpt = Annotated[Optional[list[str]], typer.Option(
    "--set", help="Override a config key: section.key=value (repeatable).")]
ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", "-m", help="Registry name (indoor, glasses), model folder or hf-hub:ORG/REPO[@REV]. Default: indoor.")]
DEFAULT_MAX_PIXELS = 100_000_000  # mirrors imageio.DEFAULT_MAX_PIXELS without importing OpenCV
ModelArg = Annotated[Optional[str], typer.Argument(
    metavar="MODEL", help="Registry name, model folder or hf-hub:ORG/REPO[@REV].")]
