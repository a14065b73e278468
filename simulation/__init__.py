"""The synthetic credit world: `python -m simulation generate`. See world.py and truth.py."""
