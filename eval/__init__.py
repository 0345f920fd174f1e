"""Evaluation of generated audio: KL, FAD, event-order accuracy, and the models they need."""
