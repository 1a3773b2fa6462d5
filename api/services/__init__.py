"""Domain operations that span several catalog tables."""
