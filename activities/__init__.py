"""Every side effect of a session's life; the workflows only decide."""
