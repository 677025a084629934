"""``sessionctl``, the operators' command line (``starter.cli.app``)."""
