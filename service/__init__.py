"""Colorizer's HTTP service: loads an exported SavedModel and colorizes uploads."""
