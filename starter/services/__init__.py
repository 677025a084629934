"""What the API and the CLI do: one service class per resource, over the store's repositories."""
