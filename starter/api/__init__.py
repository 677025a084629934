"""The HTTP API: the app factory (``starter.api.app``), its routers, auth and HTTP models."""
