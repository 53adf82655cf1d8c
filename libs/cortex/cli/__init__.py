"""The `cortex` command line: `cortex up`, `cortex status` and the commands of each area."""
