"""Escalation to people: triggers, tickets and the handoff queue (no Rasa imports)."""
