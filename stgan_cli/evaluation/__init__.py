"""How well a model does: metrics, the synthetic protocol, real photos, automatic placement, and the
tables and pictures of their reports."""
