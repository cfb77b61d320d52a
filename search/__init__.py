"""The search service: CLI, run configuration, study and samplers, the ask/tell driver, reports."""
