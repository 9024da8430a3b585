"""What a newcomer reads: help that fits 80 columns and shows examples, model cards whose tables
say what they measure."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stgan_cli.commands.models import card_tables

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", ["composite", "eval", "data from-photos", "train", "export"])
def test_help_at_80_columns_cuts_no_word_and_has_examples(command):
    env = dict(os.environ, COLUMNS="80", TERM="dumb")
    out = subprocess.run([sys.executable, "-m", "stgan_cli", *command.split(), "--help"], capture_output=True,
                         text=True, timeout=60, env=env)
    assert out.returncode == 0 and "…" not in out.stdout, out.stdout
    if command != "data from-photos":
        assert "Examples:" in out.stdout and "stgan " + command.split()[0] in out.stdout.split("Examples:")[1]


def test_every_table_of_the_shipped_cards_gets_a_title():
    for card in sorted((ROOT / "models").glob("*/README.md")):
        tables = card_tables(card.read_text(encoding="utf-8"))
        assert tables, card
        for title, rows in tables:
            assert 10 <= len(title) <= 110 and "|" not in title and "`" not in title, (card, title)
            assert rows[0].startswith("|") and set(rows[1]) <= set("|-: "), (card, title)


def test_a_table_under_a_command_is_titled_by_its_heading():
    text = "## Measured on rooms\n\n`stgan eval x --data y`\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n" \
           "From the **truth**: it stays.\n\n| c |\n|---|\n| 3 |\n"
    assert [t for t, _ in card_tables(text)] == ["Measured on rooms", "From the truth: it stays"]
