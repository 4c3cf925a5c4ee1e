"""Foundations shared by every layer: errors, ids, clock, settings, URL-scheme registry."""
