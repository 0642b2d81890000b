"""Training support: synthetic distortions, weak labels, the paper-protocol training loop."""
