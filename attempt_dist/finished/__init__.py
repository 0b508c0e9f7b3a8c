"""A finished run and what is done with it: its record, its artefacts, predict, export."""
