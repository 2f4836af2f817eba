"""The Textual dashboard: reads the engine's snapshot and sends actions back through it."""
