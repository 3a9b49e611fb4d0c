"""Response engine: incidents, statutory deadlines, scheduled notices and notification channels."""
