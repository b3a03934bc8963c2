"""Many gateway nodes serving one network through Redis (docs/cluster.md)."""
