"""The product's engine, checks, remediations and Azure adapters (no trigger code)."""
