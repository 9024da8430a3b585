"""Where the cut-out goes: the automatic placement search."""
