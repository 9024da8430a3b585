"""Pure geometry shared by every part: no I/O, no model."""
