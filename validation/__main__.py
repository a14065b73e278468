"""python -m validation report: the validation pack of a model (the command lives in review/cli.py)."""
import sys

from review.cli import main

if __name__ == "__main__":
    sys.exit(main())
