"""Who the caller is and what it may see: the one visibility layer."""
