"""A local Azure for tests and the demo: ARM, managed identity, Graph, ACR and Kubernetes over HTTPS."""
