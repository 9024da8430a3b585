"""Models other than the generators' folders of :mod:`stgan_cli.modelstore`: the placement critic and the
harmonizer (``kind:`` in their config, :mod:`.kinds`)."""
