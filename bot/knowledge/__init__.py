"""The consumer-rights knowledge base: statutes, entries and retrieval (no Rasa imports)."""
