"""Real relay servers, a hostile relay and test data for the relay client's tests."""
