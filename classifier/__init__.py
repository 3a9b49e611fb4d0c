"""Chinese-text classifier: relevance, priority category, severity and sentiment for one post."""
