"""PostgreSQL persistence: SQLAlchemy models, repositories and Alembic migrations."""
