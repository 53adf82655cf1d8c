"""Runtime drivers: how desired replicas become running ones (`host` now, `kubernetes` next)."""
