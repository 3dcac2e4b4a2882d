"""Small shared file helpers: atomic writes and clear file errors."""
