"""DynamicAvatars application: the Qt GUI and the command-line interface over the same engine."""

import engine  # noqa: F401  (sets the OpenMP wait policy before anything loads torch; see engine/__init__.py)
