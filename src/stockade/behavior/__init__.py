"""Behaviour: workload identity and the profiles learned per workload from the sensor's events."""
