"""Intrusion detection: suspicious traffic on the closed network (ids.traffic) and suspicious operator behaviour (ids.operations)."""
