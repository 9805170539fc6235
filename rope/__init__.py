"""ROPE: Remote Objects, Procedures and Events."""
