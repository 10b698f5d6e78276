"""Events: the events topic's contract — who listens (interest), publishing, the
operators' log."""
