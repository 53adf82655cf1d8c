"""The workflow service: workflow templates, workflows, and their durable executions."""
