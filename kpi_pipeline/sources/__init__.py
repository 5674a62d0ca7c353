"""Sources: each turns the outside world into typed frames with a declared schema."""
