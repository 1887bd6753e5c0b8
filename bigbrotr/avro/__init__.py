"""Avro plumbing behind `bigbrotr.codec`: schema files, wire framing and schema registries."""
