"""Sending SMS: a small port (port.py) and its Cequens adapter (cequens.py)."""
