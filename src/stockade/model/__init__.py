"""The data model: events, fields, alerts. Imports nothing above it."""
