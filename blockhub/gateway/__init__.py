"""The gateway: admits hubs, fans out their signed HubInfo, relays sealed handshakes."""
