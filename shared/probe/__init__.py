"""The node pull probe: what a node sees when it pulls (policy ``probe: auto``)."""
