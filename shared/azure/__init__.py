"""Adapters to Azure: the only package that imports Azure SDKs (lazily, at first use)."""
