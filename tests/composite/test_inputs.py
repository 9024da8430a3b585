"""Arguments to composite items (inputs), one-line errors (errors) and Hub references (hub), alone."""

from pathlib import Path

import pytest

from stgan_cli import errors
from stgan_cli.model import hub
from stgan_cli.composite import inputs
from stgan_cli.errors import StganError, UsageError


def touch(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"x")
    return [folder / n for n in names]


def test_expand_lists_images_of_a_folder_sorted_and_hidden_files_left_out(tmp_path):
    touch(tmp_path / "d", "b.png", "a.JPG", ".c.png.part", "notes.txt")
    files, many = inputs.expand(str(tmp_path / "d"), "background")
    assert many and [f.name for f in files] == ["a.JPG", "b.png"]
    files, many = inputs.expand(str(tmp_path / "d" / "b.png"), "background")
    assert not many and files == [tmp_path / "d" / "b.png"]
    files, many = inputs.expand(str(tmp_path / "d" / "*.png"), "background")
    assert many and [f.name for f in files] == ["b.png"]
    with pytest.raises(StganError, match="no such file or folder"):
        inputs.expand(str(tmp_path / "missing.png"), "foreground")
    with pytest.raises(StganError, match="the pattern matches no foreground files"):
        inputs.expand(str(tmp_path / "d" / "*.webp"), "foreground")
    touch(tmp_path / "empty", "readme.md")
    with pytest.raises(StganError, match="the folder holds no images"):
        inputs.expand(str(tmp_path / "empty"), "background")


def test_plan_pairs_by_stem_warns_about_the_rest_and_crosses_on_request(tmp_path):
    touch(tmp_path / "fg", "chair.png", "lamp.png")
    touch(tmp_path / "bg", "chair.jpg", "room.jpg")
    items, batch, warnings = inputs.plan(str(tmp_path / "fg"), str(tmp_path / "bg"), str(tmp_path / "out"))
    assert batch and [(i.fg.name, i.bg.name, i.out.name) for i in items] == [("chair.png", "chair.jpg", "chair.png")]
    assert len(warnings) == 2 and any("lamp.png" in w for w in warnings) and any("room.jpg" in w for w in warnings)
    items, _, _ = inputs.plan(str(tmp_path / "fg"), str(tmp_path / "bg"), str(tmp_path / "out"), cross=True, fmt="jpg")
    assert sorted(i.out.name for i in items) == ["chair__chair.jpg", "chair__room.jpg", "lamp__chair.jpg",
                                                  "lamp__room.jpg"]
    with pytest.raises(UsageError, match="--out is a folder"):
        inputs.plan(str(tmp_path / "fg"), str(tmp_path / "bg" / "room.jpg"), str(tmp_path / "x.png"))


def test_plan_refuses_to_write_over_an_input(tmp_path):
    fg, bg = touch(tmp_path, "fg.png", "bg.png")
    with pytest.raises(StganError):
        inputs.plan(str(fg), str(bg), str(bg))


def test_claim_outputs_applies_the_overwrite_policy_of_a_batch(tmp_path):
    fg = touch(tmp_path, "fg.png")[0]
    touch(tmp_path / "bg", "a.png", "b.png")
    items, _, _ = inputs.plan(str(fg), str(tmp_path / "bg"), str(tmp_path / "out"))
    todo, skipped = inputs.claim_outputs(items, str(tmp_path / "out"), True, False, False)
    assert (tmp_path / "out").is_dir() and len(todo) == 2 and skipped == []
    touch(tmp_path / "out", "a.png")
    with pytest.raises(UsageError, match="already exists .*--overwrite or --skip-existing"):
        inputs.claim_outputs(items, str(tmp_path / "out"), True, False, False)
    todo, skipped = inputs.claim_outputs(items, str(tmp_path / "out"), True, False, True)
    assert [i.out.name for i in todo] == ["b.png"] and [i.out.name for i in skipped] == ["a.png"]
    todo, skipped = inputs.claim_outputs(items, str(tmp_path / "out"), True, True, False)
    assert len(todo) == 2 and skipped == []
    with pytest.raises(StganError, match="unsupported|format|extension"):
        inputs.claim_outputs([inputs.Item(fg, fg, tmp_path / "out" / "x.gif")], str(tmp_path / "out" / "x.gif"),
                             False, False, False)


def test_errors_suggest_close_names_and_say_how_to_see_more():
    assert errors.suggest("indor", ["indoor", "glasses"]) == " (did you mean 'indoor'?)"
    assert errors.suggest("zzz", ["indoor"]) == ""
    line = errors.unexpected(KeyError("k\nsecond line"))
    assert line.startswith("unexpected KeyError: 'k") and "\n" not in line and "STGAN_DEBUG=1" in line
    assert StganError.exit_code == 1 and UsageError.exit_code == 2


@pytest.mark.parametrize("ref, expected", [("hf-hub:org/repo", ("org/repo", None)),
                                           ("hf-hub:org/repo@v1.0", ("org/repo", "v1.0")),
                                           ("hf-hub:org/repo@refs/pr/3", ("org/repo", "refs/pr/3"))])
def test_hub_references_parse(ref, expected):
    assert hub.parse_hub_ref(ref) == expected


@pytest.mark.parametrize("ref", ["hf-hub:repo", "hf-hub:../etc/passwd", "hf-hub:org/re--po", "hf-hub:org/repo@..",
                                 "hf-hub:org/repo@main/"])
def test_hub_references_that_could_be_paths_are_refused(ref):
    with pytest.raises(StganError, match="hf-hub:|revision"):
        hub.parse_hub_ref(ref)
