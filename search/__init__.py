"""The search service: the CLI, run configuration, the study, the loop and what it uses."""
