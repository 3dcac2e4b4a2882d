"""DynamicAvatars application: the Qt GUI and the command-line interface over the same engine."""
