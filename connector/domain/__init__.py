"""The pure domain: orders, identity, stage models and predictions, with no I/O and no clock."""
