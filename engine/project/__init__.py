"""Project files (.dap), autosave with crash recovery, and the recent-projects list (Qt-free)."""

from engine.project.autosave import Autosaver
from engine.project.project_file import Project, load_project, save_project
from engine.project.recent import RecentProjects

__all__ = ["Autosaver", "Project", "RecentProjects", "load_project", "save_project"]
