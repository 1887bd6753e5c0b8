"""`bigbrotr demo`: two real local relays, filled with signed events, archived end to end."""
