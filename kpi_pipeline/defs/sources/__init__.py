"""Source assets: one module per source, each loading raw tables by day partition."""
