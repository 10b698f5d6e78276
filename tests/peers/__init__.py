"""HTTP peers on loopback that follow each provider's published API."""
