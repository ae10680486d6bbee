"""Database models and engine helpers."""
