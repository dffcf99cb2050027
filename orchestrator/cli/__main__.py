import sys

from orchestrator.cli import main

if __name__ == "__main__":  # uvicorn's worker processes re-import the main module (spawn)
    sys.exit(main())
