"""Gatehouse's pages; ``blueprint`` maps their URLs."""
