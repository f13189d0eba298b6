"""The domain: what an order is, how a customer's stage follows from their orders, and the ports.

Pure code with no I/O and no clock: `orders` (the normalised Order, identity keys, amounts),
`stages` (the RFM and five-phase rules, bands and figures; see docs/rules.md), `inbound` (the
actions a platform payload asks for) and `ports` (what a destination adapter implements). Every
other layer builds on these; this package imports nothing of stagesync but `connector.errors`.
"""
