"""Deployments: named, versioned flow entrypoints with schedules."""
