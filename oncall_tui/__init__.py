"""oncall-tui: a keyboard-driven terminal dashboard for running an incident."""

__version__ = "0.1.0"
