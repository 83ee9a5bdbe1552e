"""Orders and returns: the order-system interface, its clients, and the return rules."""
