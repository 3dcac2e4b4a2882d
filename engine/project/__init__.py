"""Project files (.dap), autosave with crash recovery, and the recent-projects list (Qt-free)."""
