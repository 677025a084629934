"""Everything that starts and signals workflows: HTTP API, CLI and the embedded dev stack."""
