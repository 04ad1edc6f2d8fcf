"""The native Linux sensor: kernel activity -> Stockade events (issue 3)."""
