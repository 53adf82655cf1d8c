"""Operator tools that work on a platform from outside its services: backup and restore."""
