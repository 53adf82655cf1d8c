"""The lifecycle service: templates, agents (their desired state) and the runtime drivers that
make the actual replicas match it."""
