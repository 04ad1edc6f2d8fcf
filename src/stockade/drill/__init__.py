"""Drills: safe, self-contained attack simulations in disposable containers, and what the running
instance made of each (detected, blocked, grouped into an incident, contained). docs/drills.md."""
