"""Run the DynamicAvatars GUI (same as the `dynamicavatars-gui` entry point)."""

from __future__ import annotations

if __name__ == "__main__":
    from app.gui_main import main

    raise SystemExit(main())
