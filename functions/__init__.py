"""Thin triggers: each parses its wire payload, calls the engine once and returns."""
