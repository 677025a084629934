"""Pure business logic and typed messages shared by every layer; no I/O, no clock."""
