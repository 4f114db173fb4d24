"""(to be filled) scenario builders for this domain."""
