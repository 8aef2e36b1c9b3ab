"""One module per command group; orchestrator.cli puts them together."""
