"""A Django database backend: PostgreSQL that starts the embedded server before connecting (``base.py``)."""
