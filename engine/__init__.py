"""DynamicAvatars engine: everything that computes. Imports no Qt and nothing from app/ or widgets/."""
