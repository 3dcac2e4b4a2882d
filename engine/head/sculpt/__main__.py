"""python -m engine.head.sculpt: rebuild the embedded demo head (see engine/head/sculpt/build.py)."""

from engine.head.sculpt.build import main

raise SystemExit(main())
