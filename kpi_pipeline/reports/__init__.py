"""What people read: the scorecard, built from the scored marts in the warehouse."""
