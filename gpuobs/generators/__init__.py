"""Generators: FleetModel -> {relative path: text}. Each module owns one kind of output."""
