"""Stand-ins for the outside world in tests: signed platform webhooks (`senders`), platform APIs
answered by `responses` (`platforms`), a real local HTTP server playing an email tool
(`vendor_server`), with a shop that syncs to its Omnisend (`omnisend_shop`), and a destination
that refuses everything (`destinations`)."""
